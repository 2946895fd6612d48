/* lib/schedule.c: learning-rate schedules (constant, step, cosine, alpha/sqrt(t),
 * each with an optional linear warm-up), as closed forms of the 1-based step t.
 *
 * The formulas are torch.optim.lr_scheduler's closed forms (StepLR,
 * CosineAnnealingLR, LinearLR, composed like SequentialLR); the exact step
 * index conventions are in effdim/optim.h. alpha/sqrt(t) is the step size of
 * Reddi, Kale and Kumar 2018 (Theorem 4). Cosine annealing: Loshchilov and
 * Hutter 2017 (SGDR), without restarts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "effdim/optim.h"
#include "internal.h"

#define EFFDIM_PI 3.14159265358979323846 /* math.pi */

effdim_schedule effdim_schedule_constant(double lr)
{
    effdim_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = EFFDIM_SCHEDULE_CONSTANT;
    s.lr = lr;
    s.step_size = 1;
    s.gamma = 0.1;
    s.t_max = 1;
    s.lr_min = 0.0;
    s.warmup = 0;
    s.warmup_start = 1.0 / 3.0;
    return s;
}

static const char *kind_label(effdim_schedule_kind k)
{
    switch (k) {
    case EFFDIM_SCHEDULE_CONSTANT: return "constant";
    case EFFDIM_SCHEDULE_STEP: return "step";
    case EFFDIM_SCHEDULE_COSINE: return "cosine";
    case EFFDIM_SCHEDULE_INV_SQRT: return "sqrt";
    }
    return "?";
}

effdim_status effdim_schedule_check(const effdim_schedule *s, effdim_error *err)
{
    RETURN_ERROR_IF(!s, err, EFFDIM_EINVAL, "schedule: NULL");
    RETURN_ERROR_IF((unsigned)s->kind > EFFDIM_SCHEDULE_INV_SQRT, err, EFFDIM_EINVAL,
                    "schedule: kind %d unknown, expected constant, step, cosine or sqrt",
                    (int)s->kind);
    const char *k = kind_label(s->kind);
    RETURN_ERROR_IF(!(s->lr >= 0.0) || !isfinite(s->lr), err, EFFDIM_EINVAL,
                    "schedule %s: lr = %g, expected a finite value >= 0", k, s->lr);
    if (s->kind == EFFDIM_SCHEDULE_STEP) {
        RETURN_ERROR_IF(s->step_size == 0, err, EFFDIM_EINVAL,
                        "schedule step: every = 0, expected at least 1 step");
        RETURN_ERROR_IF(!(s->gamma >= 0.0) || !isfinite(s->gamma), err, EFFDIM_EINVAL,
                        "schedule step: gamma = %g, expected a finite value >= 0", s->gamma);
    }
    if (s->kind == EFFDIM_SCHEDULE_COSINE) {
        RETURN_ERROR_IF(s->t_max == 0, err, EFFDIM_EINVAL,
                        "schedule cosine: steps = 0, expected at least 1 step");
        RETURN_ERROR_IF(!(s->lr_min >= 0.0) || !isfinite(s->lr_min), err, EFFDIM_EINVAL,
                        "schedule cosine: min = %g, expected a finite value >= 0", s->lr_min);
    }
    if (s->warmup > 0)
        RETURN_ERROR_IF(!(s->warmup_start > 0.0 && s->warmup_start <= 1.0), err, EFFDIM_EINVAL,
                        "schedule %s: warm-up start = %g, expected in (0, 1]", k, s->warmup_start);
    return EFFDIM_OK;
}

/* the main schedule at 0-based index e (PyTorch's last_epoch) */
static double main_lr(const effdim_schedule *s, size_t e)
{
    switch (s->kind) {
    case EFFDIM_SCHEDULE_CONSTANT: return s->lr;
    case EFFDIM_SCHEDULE_STEP: return s->lr * pow(s->gamma, (double)(e / s->step_size));
    case EFFDIM_SCHEDULE_COSINE:
        if (e >= s->t_max) return s->lr_min;
        return s->lr_min + (s->lr - s->lr_min) * (1.0 + cos(EFFDIM_PI * (double)e / (double)s->t_max)) / 2.0;
    case EFFDIM_SCHEDULE_INV_SQRT: return s->lr / sqrt((double)e + 1.0);
    }
    return s->lr;
}

double effdim_schedule_lr(const effdim_schedule *s, size_t t)
{
    size_t e = t > 0 ? t - 1 : 0;
    if (e < s->warmup) {
        /* LinearLR closed form, end_factor 1 */
        double f = s->warmup_start + (1.0 - s->warmup_start) * (double)e / (double)s->warmup;
        return s->lr * f;
    }
    return main_lr(s, e - s->warmup);
}

/* ---- spec strings ---- */

static effdim_status parse_num(const char *key, const char *val, double *out, effdim_error *err)
{
    char *end = NULL;
    double v = strtod(val, &end);
    RETURN_ERROR_IF(end == val || *end != '\0' || !isfinite(v), err, EFFDIM_EINVAL,
                    "schedule: %s = '%s', expected a number", key, val);
    *out = v;
    return EFFDIM_OK;
}

static effdim_status parse_count(const char *key, const char *val, size_t *out, effdim_error *err)
{
    double v = 0.0;
    effdim_status st = parse_num(key, val, &v, err);
    if (st) return st;
    RETURN_ERROR_IF(v < 0.0 || v != floor(v) || v > 9.0e15, err, EFFDIM_EINVAL,
                    "schedule: %s = '%s', expected a whole number of steps", key, val);
    *out = (size_t)v;
    return EFFDIM_OK;
}

/* one "key=value" item */
static effdim_status parse_item(effdim_schedule *s, char *item, effdim_error *err)
{
    char *eq = strchr(item, '=');
    RETURN_ERROR_IF(!eq, err, EFFDIM_EINVAL, "schedule: '%s' is not key=value", item);
    *eq = '\0';
    const char *key = item, *val = eq + 1;
    const int k = (int)s->kind;
    if (!strcmp(key, "warmup")) return parse_count(key, val, &s->warmup, err);
    if (!strcmp(key, "start")) return parse_num(key, val, &s->warmup_start, err);
    if (k == EFFDIM_SCHEDULE_STEP && !strcmp(key, "every")) return parse_count(key, val, &s->step_size, err);
    if (k == EFFDIM_SCHEDULE_STEP && !strcmp(key, "gamma")) return parse_num(key, val, &s->gamma, err);
    if (k == EFFDIM_SCHEDULE_COSINE && !strcmp(key, "steps")) return parse_count(key, val, &s->t_max, err);
    if (k == EFFDIM_SCHEDULE_COSINE && !strcmp(key, "min")) return parse_num(key, val, &s->lr_min, err);
    return effdim_error_set(err, EFFDIM_EINVAL,
                            "schedule %s: key '%s' unknown, expected %s", kind_label(s->kind), key,
                            k == EFFDIM_SCHEDULE_STEP     ? "every, gamma, warmup or start"
                            : k == EFFDIM_SCHEDULE_COSINE ? "steps, min, warmup or start"
                                                          : "warmup or start");
}

effdim_status effdim_schedule_parse(const char *spec, double lr, effdim_schedule *out,
                                    effdim_error *err)
{
    RETURN_ERROR_IF(!spec || !out, err, EFFDIM_EINVAL, "schedule: NULL spec");
    char buf[256];
    RETURN_ERROR_IF(strlen(spec) >= sizeof buf, err, EFFDIM_EINVAL, "schedule: spec too long");
    strcpy(buf, spec);
    effdim_schedule s = effdim_schedule_constant(lr);
    char *rest = strchr(buf, ':');
    if (rest) *rest++ = '\0';
    const char *name = buf;
    if (!strncmp(name, "warmup=", 7) && !rest) { /* "warmup=W" alone: constant with warm-up */
        rest = buf;
        name = "constant";
    }
    if (!strcmp(name, "const") || !strcmp(name, "constant")) s.kind = EFFDIM_SCHEDULE_CONSTANT;
    else if (!strcmp(name, "step")) s.kind = EFFDIM_SCHEDULE_STEP;
    else if (!strcmp(name, "cosine")) s.kind = EFFDIM_SCHEDULE_COSINE;
    else if (!strcmp(name, "sqrt") || !strcmp(name, "invsqrt")) s.kind = EFFDIM_SCHEDULE_INV_SQRT;
    else
        return effdim_error_set(err, EFFDIM_EINVAL,
                                "schedule '%s' unknown, expected const, step:every=K[,gamma=G], "
                                "cosine:steps=T[,min=M] or sqrt (each with optional ,warmup=W)",
                                spec);
    int have_every = 0, have_steps = 0;
    char *save = NULL;
    for (char *item = rest ? strtok_r(rest, ",", &save) : NULL; item;
         item = strtok_r(NULL, ",", &save)) {
        if (!strncmp(item, "every=", 6)) have_every = 1;
        if (!strncmp(item, "steps=", 6)) have_steps = 1;
        effdim_status st = parse_item(&s, item, err);
        if (st) return st;
    }
    RETURN_ERROR_IF(s.kind == EFFDIM_SCHEDULE_STEP && !have_every, err, EFFDIM_EINVAL,
                    "schedule step: 'every=K' missing (multiply the lr by gamma every K steps)");
    RETURN_ERROR_IF(s.kind == EFFDIM_SCHEDULE_COSINE && !have_steps, err, EFFDIM_EINVAL,
                    "schedule cosine: 'steps=T' missing (anneal to min over T steps)");
    effdim_status st = effdim_schedule_check(&s, err);
    if (st) return st;
    *out = s;
    return EFFDIM_OK;
}

const char *effdim_schedule_format(const effdim_schedule *s, char *buf, size_t cap)
{
    if (!buf || cap == 0) return buf;
    int k = 0;
    switch (s->kind) {
    case EFFDIM_SCHEDULE_STEP:
        k = snprintf(buf, cap, "step:every=%zu,gamma=%.17g", s->step_size, s->gamma);
        break;
    case EFFDIM_SCHEDULE_COSINE:
        k = snprintf(buf, cap, "cosine:steps=%zu,min=%.17g", s->t_max, s->lr_min);
        break;
    case EFFDIM_SCHEDULE_INV_SQRT: k = snprintf(buf, cap, "sqrt"); break;
    default: k = snprintf(buf, cap, "constant"); break;
    }
    if (s->warmup > 0 && k >= 0 && (size_t)k < cap)
        snprintf(buf + k, cap - (size_t)k, "%swarmup=%zu,start=%.17g",
                 s->kind == EFFDIM_SCHEDULE_STEP || s->kind == EFFDIM_SCHEDULE_COSINE ? "," : ":",
                 s->warmup, s->warmup_start);
    return buf;
}
