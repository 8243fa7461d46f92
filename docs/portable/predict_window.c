/* Run a KneeGUI portable predictor (from `kneegui models export NAME --format onnx --out FILE`)
 * from C with the ONNX Runtime C API: one window in, the knee trajectory in degrees out.
 *
 *   cc predict_window.c -I<onnxruntime>/include -L<onnxruntime>/lib -lonnxruntime -o predict_window
 *   ./predict_window model.onnx < window.txt
 *
 * window.txt: rows_needed lines (oldest first, the last = now) of the input columns, separated
 * by blanks; the file's metadata says how many rows and which columns (printed to stderr).
 * Prints one line per horizon: "<milliseconds ahead> <degrees>". A controller keeps the session
 * and the buffers and calls Run once per new row. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <onnxruntime_c_api.h>

static const OrtApi *ort;

static void check(OrtStatus *status) {
    if (status != NULL) {
        fprintf(stderr, "onnxruntime: %s\n", ort->GetErrorMessage(status));
        ort->ReleaseStatus(status);
        exit(1);
    }
}

/* A metadata_props value of the exported file (malloc'ed; NULL if absent). */
static char *metadata(OrtSession *session, OrtAllocator *alloc, const char *key) {
    OrtModelMetadata *meta;
    char *value = NULL;
    check(ort->SessionGetModelMetadata(session, &meta));
    check(ort->ModelMetadataLookupCustomMetadataMap(meta, alloc, key, &value));
    char *copy = value ? strdup(value) : NULL;
    if (value) check(ort->AllocatorFree(alloc, value));
    ort->ReleaseModelMetadata(meta);
    return copy;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.onnx < window.txt\n", argv[0]);
        return 2;
    }
    ort = OrtGetApiBase()->GetApi(ORT_API_VERSION);
    OrtEnv *env;
    OrtSessionOptions *options;
    OrtSession *session;
    OrtAllocator *alloc;
    check(ort->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "kneegui", &env));
    check(ort->CreateSessionOptions(&options));
    check(ort->SetIntraOpNumThreads(options, 1)); /* one window: one thread is fastest */
    check(ort->CreateSession(env, argv[1], options, &session));
    check(ort->GetAllocatorWithDefaultOptions(&alloc));

    char *rows_text = metadata(session, alloc, "rows_needed");
    char *columns = metadata(session, alloc, "input_columns");
    char *horizons_ms = metadata(session, alloc, "horizons_ms");
    char *n_horizons = metadata(session, alloc, "horizons");
    if (!rows_text || !columns || !horizons_ms || !n_horizons) {
        fprintf(stderr, "%s: not a KneeGUI portable predictor (metadata missing)\n", argv[1]);
        return 2;
    }
    const int64_t rows = atoll(rows_text), horizons = atoll(n_horizons);
    int64_t cols = 1;
    for (const char *c = columns; *c; ++c) cols += (*c == ',');
    fprintf(stderr, "window: %lld rows x %lld columns (%s)\n", (long long)rows,
            (long long)cols, columns);

    /* The window, row-major [1, rows, cols]: exactly the layout of the input tensor. */
    float *window = malloc(sizeof(float) * rows * cols);
    for (int64_t i = 0; i < rows * cols; ++i) {
        if (scanf("%f", &window[i]) != 1) {
            fprintf(stderr, "need %lld numbers on stdin, got %lld\n",
                    (long long)(rows * cols), (long long)i);
            return 2;
        }
    }
    OrtMemoryInfo *memory;
    OrtValue *input = NULL, *output = NULL;
    const int64_t shape[3] = {1, rows, cols};
    check(ort->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &memory));
    check(ort->CreateTensorWithDataAsOrtValue(memory, window, sizeof(float) * rows * cols, shape,
                                              3, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &input));
    const char *input_names[] = {"window"};
    const char *output_names[] = {"trajectory_deg"};
    check(ort->Run(session, NULL, input_names, (const OrtValue *const *)&input, 1, output_names,
                   1, &output));
    float *degrees;
    check(ort->GetTensorMutableData(output, (void **)&degrees));

    const char *ms = horizons_ms;
    for (int64_t h = 0; h < horizons; ++h) {
        double ahead = strtod(ms, (char **)&ms);
        ms += (*ms == ',');
        if (isnan(degrees[h])) {
            printf("%g nan\n", ahead); /* the window held a gap: no prediction */
        } else {
            printf("%g %.6f\n", ahead, degrees[h]);
        }
    }
    ort->ReleaseValue(output);
    ort->ReleaseValue(input);
    ort->ReleaseMemoryInfo(memory);
    ort->ReleaseSession(session);
    ort->ReleaseSessionOptions(options);
    ort->ReleaseEnv(env);
    free(window);
    free(rows_text);
    free(columns);
    free(horizons_ms);
    free(n_horizons);
    return 0;
}
