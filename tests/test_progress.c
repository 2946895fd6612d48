/* tests/test_progress.c: the progress mechanism (effdim/progress.h) and the
 * two layout helpers every module shares (effdim_mlp_loss_scale,
 * effdim_mlp_layer_block). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "effdim/mlp.h"
#include "effdim/progress.h"

typedef struct seen {
    int calls;
    effdim_progress_event last;
    char detail[128];
    char stage[32];
    int stop_after;
} seen;

static int record(void *ctx, const effdim_progress_event *ev)
{
    seen *s = ctx;
    s->calls++;
    s->last = *ev;
    snprintf(s->detail, sizeof s->detail, "%s", ev->detail);
    snprintf(s->stage, sizeof s->stage, "%s", ev->stage);
    return s->stop_after && s->calls >= s->stop_after;
}

static void report_fills_fraction_eta_and_detail(void)
{
    seen s;
    memset(&s, 0, sizeof s);
    effdim_progress p = {record, &s};
    double start = effdim_progress_clock() - 2.0; /* a stage that began 2 s ago */
    CHECK(effdim_progress_report(&p, "slq", start, 3, 12, -1.0, "probe %d of %d", 3, 12) == 0);
    CHECK(s.calls == 1);
    CHECK(!strcmp(s.stage, "slq"));
    CHECK(!strcmp(s.detail, "probe 3 of 12"));
    CHECK_CLOSE(s.last.fraction, 0.25, 1e-15);
    CHECK(s.last.elapsed >= 2.0 && s.last.elapsed < 60.0);
    /* 3 units took elapsed seconds, so 9 more take 3x as long */
    CHECK_CLOSE(s.last.eta, 3.0 * s.last.elapsed, 1e-12);
    CHECK(s.last.done == 3 && s.last.total == 12);
}

static void unknown_totals_and_hints_are_reported_as_such(void)
{
    seen s;
    memset(&s, 0, sizeof s);
    effdim_progress p = {record, &s};
    double start = effdim_progress_clock();
    effdim_progress_report(&p, "lanczos", start, 7, 0, -1.0, NULL);
    CHECK(s.last.fraction < 0);
    CHECK(s.last.eta < 0);
    CHECK(!strcmp(s.detail, ""));
    effdim_progress_report(&p, "slq", start, 0, 30, 41.5, "x");
    CHECK_NEAR(s.last.eta, 41.5, 0); /* the stage's own estimate wins */
    CHECK_NEAR(s.last.fraction, 0.0, 0);
    effdim_progress_report(&p, "slq", start, 31, 30, -1.0, "x");
    CHECK_NEAR(s.last.fraction, 1.0, 0); /* done past total is clamped */
    CHECK_NEAR(s.last.eta, 0.0, 0);
}

static void the_callback_answer_asks_the_job_to_stop(void)
{
    seen s;
    memset(&s, 0, sizeof s);
    s.stop_after = 2;
    effdim_progress p = {record, &s};
    double start = effdim_progress_clock();
    CHECK(effdim_progress_report(&p, "train", start, 1, 4, -1.0, "epoch 1") == 0);
    CHECK(effdim_progress_report(&p, "train", start, 2, 4, -1.0, "epoch 2") != 0);
    /* no callback: never a stop, never a crash */
    effdim_progress none = {NULL, NULL};
    CHECK(effdim_progress_report(&none, "train", start, 1, 4, -1.0, "x") == 0);
    CHECK(effdim_progress_report(NULL, "train", start, 1, 4, -1.0, "x") == 0);
}

static void loss_scale_and_layer_blocks_follow_the_layout(void)
{
    effdim_mlp m;
    effdim_error e;
    size_t sizes[] = {7, 5, 3};
    effdim_activation acts[] = {EFFDIM_ACT_TANH, EFFDIM_ACT_IDENTITY};
    CHECK_OK(effdim_mlp_init(&m, 2, sizes, acts, EFFDIM_LOSS_CROSS_ENTROPY,
                             EFFDIM_REDUCTION_MEAN, &e), &e);
    CHECK_NEAR(effdim_mlp_loss_scale(&m, 8), 0.125, 0);
    CHECK(isnan(effdim_mlp_loss_scale(&m, 0)));
    size_t off, size, total = 0;
    for (size_t l = 0; l < m.n_layers; ++l) {
        effdim_mlp_layer_block(&m, l, &off, &size);
        CHECK(off == total);           /* blocks tile theta in order */
        CHECK(m.b_off[l] + m.sizes[l + 1] == off + size); /* bias ends the block */
        total += size;
    }
    CHECK(total == m.n_params);
    m.reduction = EFFDIM_REDUCTION_SUM;
    CHECK_NEAR(effdim_mlp_loss_scale(&m, 8), 1.0, 0);
    CHECK_NEAR(effdim_mlp_loss_scale(&m, 0), 1.0, 0);
}

CHECK_TESTS({"report fills fraction, eta and detail", report_fills_fraction_eta_and_detail},
            {"unknown totals and hints are reported as such",
             unknown_totals_and_hints_are_reported_as_such},
            {"the callback answer asks the job to stop", the_callback_answer_asks_the_job_to_stop},
            {"loss scale and layer blocks follow the layout",
             loss_scale_and_layer_blocks_follow_the_layout})
