/* Scores spandsp's dtmf_rx (Debian libspandsp-dev, default parameters) on the test set
 * written by `dtmf-bench write DIR`: same cases, same offsets, same 20 ms frames.
 * Usage: dtmf_spandsp DIR   (prints "row passed total" lines for DIR/spandsp.tsv) */
#include <spandsp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 64

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.tsv", argv[1]);
    FILE *m = fopen(path, "r");
    if (!m) {
        perror(path);
        return 1;
    }
    long passed[MAX_ROWS] = {0}, total[MAX_ROWS] = {0};
    int rows = 0;
    int row;
    char expected[256], file[4096];
    int step;
    while (fscanf(m, "%d\t%255s\t%4095s\t%d\n", &row, expected, file, &step) == 4) {
        if (step < 1)
            step = 1;
        if (row < 0 || row >= MAX_ROWS) {
            fprintf(stderr, "row %d out of range\n", row);
            return 1;
        }
        if (row + 1 > rows)
            rows = row + 1;
        if (strcmp(expected, "-") == 0)
            expected[0] = '\0';
        FILE *f = fopen(file, "rb");
        if (!f) {
            perror(file);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f) / 2;
        fseek(f, 0, SEEK_SET);
        int16_t *s = malloc(n * sizeof *s);
        if (fread(s, 2, n, f) != (size_t) n) {
            perror(file);
            return 1;
        }
        fclose(f);
        for (int off = 0; off < 160; off += step) {
            dtmf_rx_state_t *rx = dtmf_rx_init(NULL, NULL, NULL);
            char got[256] = "";
            size_t len = 0;
            for (long i = off; i < n; i += 160) {
                int chunk = (n - i < 160) ? (int) (n - i) : 160;
                dtmf_rx(rx, s + i, chunk);
                len += dtmf_rx_get(rx, got + len, (int) (sizeof got - 1 - len));
                got[len] = '\0';
            }
            total[row]++;
            if (strcmp(got, expected) == 0)
                passed[row]++;
            dtmf_rx_free(rx);
        }
        free(s);
    }
    fclose(m);
    for (int r = 0; r < rows; r++)
        printf("%d\t%ld\t%ld\n", r, passed[r], total[r]);
    return 0;
}
