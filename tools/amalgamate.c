/* amalgamate: generate the single header fti.h from the parts in src/.
 *
 *   build/amalgamate [--lines] [-o OUT] [SRCDIR]      (defaults: -o fti.h, SRCDIR src)
 *
 * Layout of the output (byte-stable: LF, no timestamps, trailing blanks stripped):
 *   src/header.txt (documentation block; "@VERSION@" becomes FTI_VERSION_STRING from 00_base.h)
 *   #ifndef FTI_H ... every src/NN_name.h in NN order ... #endif
 *   #ifdef FTI_IMPLEMENTATION / done-guard ... every src/NN_name.c in NN order ... #endif
 *   src/license.txt
 * Each part is wrapped in begin/end banners naming its file. `#include "NN_x.h"` lines are
 * commented out (everything is in one file); each system `#include <...>` is kept the first time
 * and commented out after. --lines adds #line directives so compiler errors point into src/.
 * The output is written to a temp file and renamed, so a failed run never leaves half a header.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_file(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = (char *)malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    if (len_out) *len_out = (size_t)n;
    return buf;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* System includes already emitted. */
static char *seen[512];
static int n_seen;

static int seen_include(const char *name) {
    int i;
    for (i = 0; i < n_seen; i++)
        if (strcmp(seen[i], name) == 0) return 1;
    if (n_seen < 512) seen[n_seen++] = strdup(name);
    return 0;
}

/* Writes one line (without its '\n') with trailing blanks stripped. */
static void put_line(FILE *out, const char *s, size_t n) {
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    fwrite(s, 1, n, out);
    fputc('\n', out);
}

static int emit_part(FILE *out, const char *dir, const char *name, int lines) {
    char path[1024];
    size_t len, i, start;
    char *text;
    int line_no = 1;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    text = read_file(path, &len);
    if (!text) {
        fprintf(stderr, "amalgamate: cannot read %s\n", path);
        return 1;
    }
    fprintf(out, "/* ---- begin src/%s ---- */\n", name);
    if (lines) fprintf(out, "#line 1 \"src/%s\"\n", name);
    for (start = 0, i = 0; i <= len; i++) {
        if (i == len || text[i] == '\n') {
            const char *s = text + start;
            size_t n = i - start;
            const char *p = s;
            while (p < s + n && (*p == ' ' || *p == '\t')) p++;
            if (n > 0 && (size_t)(s + n - p) > 8 && strncmp(p, "#include", 8) == 0) {
                const char *q = p + 8;
                while (*q == ' ' || *q == '\t') q++;
                if (*q == '"') {
                    fprintf(out, "/* %.*s (amalgamated) */\n", (int)(s + n - p), p);
                } else if (*q == '<') {
                    const char *e = strchr(q, '>');
                    char inc[256];
                    size_t k = e ? (size_t)(e - q + 1) : 0;
                    if (k == 0 || k >= sizeof inc) {
                        put_line(out, s, n);
                    } else {
                        memcpy(inc, q, k);
                        inc[k] = 0;
                        if (seen_include(inc))
                            fprintf(out, "/* %.*s (already included) */\n", (int)(s + n - p), p);
                        else
                            put_line(out, s, n);
                    }
                } else {
                    put_line(out, s, n);
                }
            } else if (i < len || n > 0) {
                put_line(out, s, n);
            }
            start = i + 1;
            line_no++;
        }
    }
    (void)line_no;
    fprintf(out, "/* ---- end src/%s ---- */\n", name);
    free(text);
    return 0;
}

static int emit_text(FILE *out, const char *path, const char *version) {
    size_t len, i;
    char *text = read_file(path, &len);
    const char *mark = "@VERSION@";
    if (!text) {
        fprintf(stderr, "amalgamate: cannot read %s\n", path);
        return 1;
    }
    for (i = 0; i < len; i++) {
        if (strncmp(text + i, mark, 9) == 0) {
            fputs(version, out);
            i += 8;
        } else {
            fputc(text[i], out);
        }
    }
    if (len > 0 && text[len - 1] != '\n') fputc('\n', out);
    free(text);
    return 0;
}

int main(int argc, char **argv) {
    const char *out_path = "fti.h", *dir = "src";
    int lines = 0, i, n_parts = 0, rc = 0;
    char *parts[256], tmp[1100], path[1024], version[64];
    DIR *d;
    struct dirent *e;
    FILE *out;
    char *base;
    const char *v;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--lines") == 0) lines = 1;
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) out_path = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: amalgamate [--lines] [-o OUT] [SRCDIR]\n"
                   "Generates the single header (default fti.h) from SRCDIR (default src):\n"
                   "header.txt, the NN_*.h parts, the NN_*.c parts under FTI_IMPLEMENTATION,\n"
                   "license.txt. --lines adds #line directives pointing into SRCDIR.\n");
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "amalgamate: unknown option %s (try --help)\n", argv[i]);
            return 2;
        } else dir = argv[i];
    }
    d = opendir(dir);
    if (!d) {
        fprintf(stderr, "amalgamate: cannot open directory %s\n", dir);
        return 1;
    }
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 5 && isdigit((unsigned char)e->d_name[0]) && isdigit((unsigned char)e->d_name[1]) &&
            e->d_name[2] == '_' && e->d_name[n - 2] == '.' &&
            (e->d_name[n - 1] == 'h' || e->d_name[n - 1] == 'c') && n_parts < 256)
            parts[n_parts++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(parts, (size_t)n_parts, sizeof parts[0], cmp_str);

    snprintf(path, sizeof path, "%s/00_base.h", dir);
    base = read_file(path, NULL);
    v = base ? strstr(base, "#define FTI_VERSION_STRING \"") : NULL;
    if (!v) {
        fprintf(stderr, "amalgamate: FTI_VERSION_STRING not found in %s\n", path);
        return 1;
    }
    v += strlen("#define FTI_VERSION_STRING \"");
    for (i = 0; v[i] && v[i] != '"' && i < 63; i++) version[i] = v[i];
    version[i] = 0;
    free(base);

    snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
    out = fopen(tmp, "wb");
    if (!out) {
        fprintf(stderr, "amalgamate: cannot write %s\n", tmp);
        return 1;
    }
    snprintf(path, sizeof path, "%s/header.txt", dir);
    rc |= emit_text(out, path, version);
    fputs("#ifndef FTI_H\n#define FTI_H\n\n", out);
    for (i = 0; i < n_parts; i++)
        if (parts[i][strlen(parts[i]) - 1] == 'h') rc |= emit_part(out, dir, parts[i], lines);
    fputs("\n#endif /* FTI_H */\n\n", out);
    fputs("#ifdef FTI_IMPLEMENTATION\n#ifndef FTI_IMPLEMENTATION_DONE\n"
          "#define FTI_IMPLEMENTATION_DONE\n\n", out);
    for (i = 0; i < n_parts; i++)
        if (parts[i][strlen(parts[i]) - 1] == 'c') rc |= emit_part(out, dir, parts[i], lines);
    fputs("\n#endif /* FTI_IMPLEMENTATION_DONE */\n#endif /* FTI_IMPLEMENTATION */\n\n", out);
    snprintf(path, sizeof path, "%s/license.txt", dir);
    rc |= emit_text(out, path, version);
    if (fclose(out) != 0) rc = 1;
    if (rc) {
        remove(tmp);
        return 1;
    }
    if (rename(tmp, out_path) != 0) {
        fprintf(stderr, "amalgamate: cannot rename %s to %s\n", tmp, out_path);
        remove(tmp);
        return 1;
    }
    for (i = 0; i < n_parts; i++) free(parts[i]);
    for (i = 0; i < n_seen; i++) free(seen[i]);
    return 0;
}
