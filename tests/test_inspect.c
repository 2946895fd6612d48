/* tests/test_inspect.c: the file summary behind `effdim inspect`
 * (effdim/inspect.h): a file written by the library is summarised with its
 * format, its attributes' values and its data sets' shapes and types; a
 * non-HDF5 file and a missing one are refused naming the path. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "effdim/amsgrad.h"
#include "effdim/inspect.h"

static void a_written_file_is_summarised_with_values_and_shapes(void)
{
    effdim_error e;
    effdim_amsgrad_params p = effdim_amsgrad_default_params(EFFDIM_AMSGRAD_THEOREM1, 1);
    p.steps = 2000;
    p.every = 100;
    effdim_amsgrad_run r;
    CHECK_OK(effdim_amsgrad_simulate(&p, &r, NULL, &e), &e);
    const char *path = check_tmpfile("inspect.h5");
    CHECK_OK(effdim_amsgrad_save(path, &r, 1, "effdim demo amsgrad 'quoted' \"x\"", &e), &e);
    effdim_file_summary *s = NULL;
    CHECK_OK(effdim_inspect_file(path, &s, &e), &e);
    if (s) {
        CHECK(s->format && !strcmp(s->format, "effdim.demo.amsgrad"));
        const effdim_file_attr *v = effdim_file_summary_attr(s, "format_version");
        CHECK(v && v->kind == EFFDIM_ATTR_NUMBER && v->scalar && v->n == 1 && v->values[0] == 1.0);
        const effdim_file_attr *c = effdim_file_summary_attr(s, "command");
        CHECK(c && c->kind == EFFDIM_ATTR_STRING && !strcmp(c->strings[0],
                                                            "effdim demo amsgrad 'quoted' \"x\""));
        CHECK(effdim_file_summary_attr(s, "no such attribute") == NULL);
        int found = 0;
        for (size_t i = 0; i < s->n_datasets; ++i)
            if (!strcmp(s->datasets[i].path, "/theorem1_sqrt/adam/x")) {
                found = 1;
                CHECK(s->datasets[i].rank == 1 && s->datasets[i].dims[0] == r.m);
                CHECK(!strcmp(s->datasets[i].type, "float64"));
            }
        CHECK(found);
        for (size_t i = 1; i < s->n_attrs; ++i) /* name order */
            CHECK(strcmp(s->attrs[i - 1].name, s->attrs[i].name) < 0);
    }
    effdim_file_summary_free(s);
    effdim_file_summary_free(NULL);
    effdim_amsgrad_run_free(&r);
}

static void files_that_are_not_hdf5_are_refused_naming_the_path(void)
{
    effdim_error e;
    effdim_file_summary *s = (effdim_file_summary *)&e; /* must be reset to NULL */
    const char *bad = check_tmpfile("not-hdf5.h5");
    FILE *f = fopen(bad, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("this is not an HDF5 file\n", f);
        fclose(f);
    }
    CHECK(effdim_inspect_file(bad, &s, &e) != EFFDIM_OK);
    CHECK(s == NULL);
    CHECK_MSG(&e, "not-hdf5.h5");
    CHECK(effdim_inspect_file(check_tmpfile("missing.h5"), &s, &e) != EFFDIM_OK);
    CHECK_MSG(&e, "missing.h5");
}

CHECK_TESTS({"a written file is summarised with values and shapes",
             a_written_file_is_summarised_with_values_and_shapes},
            {"files that are not HDF5 are refused naming the path",
             files_that_are_not_hdf5_are_refused_naming_the_path})
