/* Tests of the feature store (part 04): cleaning rules, every input kind against a golden file,
 * hostile inputs, determinism, incremental ingest, near-duplicates, BM25 on a hand-checked case,
 * chunking, shards, and a commit killed half-way. Inputs live in tests/data/store/. */
/* tests-need: !defined(FTI_NO_STORE) */
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define STORE_DATA "tests/data/store"

/* Cleans s with flags and compares with want. */
static int clean_is(const char *s, int flags, const char *want) {
    fti_buf b;
    int ok;
    memset(&b, 0, sizeof b);
    fti_clean_text(s, strlen(s), flags, &b);
    ok = b.len == strlen(want) && memcmp(b.data ? b.data : "", want, b.len) == 0;
    if (!ok)
        fprintf(stderr, "    clean(\"%s\") = \"%.*s\", want \"%s\"\n", s, (int)b.len,
                b.data ? b.data : "", want);
    fti_buf_free(&b);
    return ok;
}

FTI_TEST(store_clean_whitespace) {
    CHECK(clean_is("  a  b\t\tc  ", 0, "a b c"));
    CHECK(clean_is("line1\r\nline2\rline3\n", 0, "line1\nline2\nline3"));
    CHECK(clean_is("p1\n\n\n\n\np2", 0, "p1\n\np2"));
    CHECK(clean_is("trailing   \nnext", 0, "trailing\nnext"));
    CHECK(clean_is("   indented\n    also", 0, "indented\nalso"));
    CHECK(clean_is("nb\xC2\xA0sp and\xE2\x80\x83"
                   "em",
                   0, "nb sp and em"));
    CHECK(clean_is("", 0, ""));
    CHECK(clean_is(" \n \t \r\n ", 0, ""));
}

FTI_TEST(store_clean_controls_and_utf8) {
    CHECK(clean_is("a\x01"
                   "b\x7f"
                   "c\x1b[0m",
                   0, "abc[0m"));
    CHECK(clean_is("zero\xE2\x80\x8Bwidth\xEF\xBB\xBF", 0, "zerowidth"));
    CHECK(clean_is("bad \xff byte", 0, "bad \xEF\xBF\xBD byte"));
    CHECK(clean_is("cut \xE2\x82", 0, "cut \xEF\xBF\xBD"));
    CHECK(clean_is("caf\xC3\xA9 ok", 0, "caf\xC3\xA9 ok"));
    {
        /* NUL bytes inside: dropped, never end the text */
        fti_buf b;
        memset(&b, 0, sizeof b);
        fti_clean_text("a\0b\0c", 5, 0, &b);
        CHECK(b.len == 3 && memcmp(b.data, "abc", 3) == 0);
        fti_buf_free(&b);
    }
}

FTI_TEST(store_clean_redaction) {
    CHECK(clean_is("mail me: ann.lee+x@mail.example.com.", FTI_CLEAN_REDACT_ALL,
                   "mail me: [EMAIL]."));
    CHECK(clean_is("see https://example.com/a?b=c, or www.example.org.", FTI_CLEAN_REDACT_ALL,
                   "see [URL], or [URL]."));
    CHECK(clean_is("call +1 (555) 123-4567 now", FTI_CLEAN_REDACT_ALL, "call [PHONE] now"));
    CHECK(clean_is("call 020 7946 0958 now", FTI_CLEAN_REDACT_ALL, "call [PHONE] now"));
    /* dates, years, versions and short numbers are not phone numbers */
    CHECK(clean_is("on 1911-01-01 in 1881, v2.0.1, room 12345", FTI_CLEAN_REDACT_ALL,
                   "on 1911-01-01 in 1881, v2.0.1, room 12345"));
    CHECK(clean_is("user@localhost is not an address", FTI_CLEAN_REDACT_ALL,
                   "user@localhost is not an address"));
    /* flags select what is redacted */
    CHECK(clean_is("a@b.cd http://x.example.com", FTI_CLEAN_REDACT_EMAIL,
                   "[EMAIL] http://x.example.com"));
    CHECK(clean_is("a@b.cd", 0, "a@b.cd"));
}

static int html_is(const char *h, const char *want_text, const char *want_title) {
    fti_buf t, title, c;
    int ok;
    memset(&t, 0, sizeof t);
    memset(&title, 0, sizeof title);
    memset(&c, 0, sizeof c);
    fti_html_to_text(h, strlen(h), &t, &title);
    fti_clean_text(t.data ? t.data : "", t.len, 0, &c);
    ok = c.len == strlen(want_text) && memcmp(c.data ? c.data : "", want_text, c.len) == 0;
    if (want_title)
        ok =
            ok && title.len == strlen(want_title) && memcmp(title.data, want_title, title.len) == 0;
    if (!ok)
        fprintf(stderr, "    html -> \"%.*s\" title \"%.*s\"\n", (int)c.len, c.data ? c.data : "",
                (int)title.len, title.data ? title.data : "");
    fti_buf_free(&t);
    fti_buf_free(&title);
    fti_buf_free(&c);
    return ok;
}

FTI_TEST(store_clean_html) {
    CHECK(html_is("<p>a</p><p>b</p>", "a\n\nb", NULL));
    CHECK(html_is("x<br>y<br/>z", "x\ny\nz", NULL));
    CHECK(html_is("<script>if (a<b) {}</script>text<style>p{}</style>", "text", NULL));
    CHECK(html_is("<SCRIPT type=x>bad</SCRIPT >ok", "ok", NULL));
    CHECK(html_is("&amp;&lt;&gt;&quot;&#39;&#x41;&eacute;&bogus;", "&<>\"'A\xC3\xA9&bogus;", NULL));
    CHECK(html_is("&#0;&#x110000;&#xD800;", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", NULL));
    CHECK(html_is("<title>T &amp; t</title><h1>H</h1>body", "H\n\nbody", "T & t"));
    CHECK(html_is("<h1>Only <b>h1</b></h1>rest", "Only h1\n\nrest", "Only h1"));
    CHECK(html_is("<a href=\"x>y\">link</a> text", "link text", NULL));
    CHECK(html_is("a <!-- <p>hidden</p> --> b", "a b", NULL));
    CHECK(html_is("1 < 2 and <unclosed", "1 < 2 and", NULL));
    CHECK(html_is("split\nsource\nlines", "split source lines", NULL));
    {
        /* deep nesting: no recursion, no crash */
        fti_buf h;
        size_t i;
        memset(&h, 0, sizeof h);
        for (i = 0; i < 100000; i++) fti_buf_puts(&h, "<div><span>");
        fti_buf_puts(&h, "deep");
        CHECK(html_is(h.data, "deep", NULL));
        fti_buf_free(&h);
    }
}

static int md_is(const char *m, const char *want, const char *want_title) {
    fti_buf t, title, c;
    int ok;
    memset(&t, 0, sizeof t);
    memset(&title, 0, sizeof title);
    memset(&c, 0, sizeof c);
    fti_markdown_to_text(m, strlen(m), &t, &title);
    fti_clean_text(t.data ? t.data : "", t.len, 0, &c);
    ok = c.len == strlen(want) && memcmp(c.data ? c.data : "", want, c.len) == 0;
    if (want_title)
        ok =
            ok && title.len == strlen(want_title) && memcmp(title.data, want_title, title.len) == 0;
    if (!ok)
        fprintf(stderr, "    md -> \"%.*s\" title \"%.*s\"\n", (int)c.len, c.data ? c.data : "",
                (int)title.len, title.data ? title.data : "");
    fti_buf_free(&t);
    fti_buf_free(&title);
    fti_buf_free(&c);
    return ok;
}

FTI_TEST(store_clean_markdown) {
    CHECK(md_is("# Title #\ntext", "Title\n\ntext", "Title"));
    CHECK(md_is("**bold** and *it* and __b__ and _i_", "bold and it and b and i", NULL));
    CHECK(md_is("snake_case_name and 2*3*4", "snake_case_name and 2*3*4", NULL));
    CHECK(md_is("[link](http://x) ![img](a.png) [ref][1]\n[1]: http://y", "link img ref", NULL));
    CHECK(md_is("- a\n* b\n+ c\n12. d", "a\nb\nc\nd", NULL));
    CHECK(md_is("> quoted\n>> twice", "quoted\ntwice", NULL));
    CHECK(md_is("```c\nint *p = _x_;\n```", "int *p = _x_;", NULL));
    CHECK(md_is("a\n\n---\n\nb\n===", "a\n\nb", NULL));
    CHECK(md_is("`code` and \\*star\\*", "code and *star*", NULL));
    CHECK(md_is("<https://example.com>", "https://example.com", NULL));
    /* front matter (YAML, TOML): not text; its title is the title */
    CHECK(md_is("---\ntitle: \"Morning walks\"\ntags: [a, b]\n---\n# Heading\nbody",
                "Heading\n\nbody", "Morning walks"));
    CHECK(md_is("+++\ntitle = 'Bread'\ndraft = false\n+++\nrye", "rye", "Bread"));
    CHECK(md_is("---\nno closing line\nbody", "no closing line\nbody", NULL)); /* a rule */
    CHECK(md_is("---\nAn opening paragraph.\n---\nbody", "An opening paragraph.\n\nbody", NULL));
    /* wiki links, embeds, footnotes, inline HTML and character references */
    CHECK(md_is("with [[Sam Lee|Sam]] on [[River Path]] ![[photo.jpg]].",
                "with Sam on River Path .", NULL));
    CHECK(md_is("a note[^1] here\n\n[^1]: The footnote.", "a note here\n\nThe footnote.", NULL));
    CHECK(md_is("a <span style=\"x\">red</span> word &amp; caf&eacute; &#8217;<!-- no -->",
                "a red word & caf\xc3\xa9 \xe2\x80\x99", NULL));
    CHECK(md_is("2 < 3 and a<b & c", "2 < 3 and a<b & c", NULL));
    /* Obsidian: %% comments %% (inline and over lines), callouts, tasks; 50% stays */
    CHECK(md_is("seen %%not this%% here, 50% off\n%%\nhidden\nlines\n%%\nafter",
                "seen here, 50% off\nafter", NULL));
    CHECK(md_is("> [!note]- Remember\n> the rye starter\n> [!quote]\n> old words",
                "Remember\nthe rye starter\nold words", NULL));
    CHECK(md_is("- [ ] buy flour\n- [x] feed starter", "buy flour\nfeed starter", NULL));
}

FTI_TEST(store_template) {
    fti_buf b;
    memset(&b, 0, sizeof b);
    fti_template_render(&b, "T", 1, "body", 4, 0);
    CHECK_EQ_STR(b.data, "<|title|>T\n<|body|>body<|endoftext|>");
    b.len = 0;
    fti_template_render(&b, NULL, 0, "open", 4, 1);
    CHECK_EQ_STR(b.data, "<|title|>\n<|body|>open");
    fti_buf_free(&b);
}

/* --- helpers for ingest tests ------------------------------------------------------------- */

static fti_result ingest1(const char *home, const char *path, const fti_ingest_opts *o, char id[65],
                          size_t *reused) {
    fti_ingest_opts oo;
    fti_error err;
    fti_result rc;
    const char *paths[1];
    if (o)
        oo = *o;
    else
        memset(&oo, 0, sizeof oo);
    oo.no_tokenizer = 1;
    if (!oo.n_threads) oo.n_threads = 2;
    paths[0] = path;
    rc = fti_store_ingest(home, paths, 1, &oo, id, reused, &err);
    if (rc != FTI_OK) fprintf(stderr, "    ingest %s: %s\n", path, err.msg);
    return rc;
}

/* Reads the docs.jsonl of a version into out. */
static int read_docs(const char *home, const char *id, fti_buf *out) {
    fti_dataset *ds = NULL;
    void *data = NULL;
    size_t len = 0;
    if (fti_dataset_open(&ds, home, id, NULL) != FTI_OK) return 0;
    if (fti_file_read(fti_dataset_docs_path(ds), 0, &data, &len, NULL) != FTI_OK) {
        fti_dataset_close(ds);
        return 0;
    }
    fti_buf_append(out, data, len);
    fti_free(data);
    fti_dataset_close(ds);
    return 1;
}

static long long manifest_int(const char *home, const char *id, const char *obj, const char *key) {
    fti_dataset *ds = NULL;
    long long v = -1;
    if (fti_dataset_open(&ds, home, id, NULL) != FTI_OK) return -1;
    v = (long long)fti_json_get_int(fti_json_get(fti_dataset_manifest(ds), obj), key, -1);
    fti_dataset_close(ds);
    return v;
}

/* The number of documents of version id rejected for reason (the manifest's
 * validation.by_reason), or -1. */
static long long rejected_for(const char *home, const char *id, const char *reason) {
    fti_dataset *ds = NULL;
    long long v;
    if (fti_dataset_open(&ds, home, id, NULL) != FTI_OK) return -1;
    v = (long long)fti_json_get_int(
        fti_json_get(fti_json_get(fti_dataset_manifest(ds), "validation"), "by_reason"), reason,
        -1);
    fti_dataset_close(ds);
    return v;
}

static long long manifest_int(const char *home, const char *id, const char *obj, const char *key);

/* w (UTF-8) as UTF-16 with a byte-order mark into out (little- or big-endian); its length. */
static size_t utf16_of(const char *w, int le, unsigned char *out) {
    size_t i = 0, n = 2, len = strlen(w), k;
    out[0] = le ? 0xFF : 0xFE, out[1] = le ? 0xFE : 0xFF;
    while (i < len) {
        uint32_t c, u[2];
        int ok;
        size_t m = 1;
        i += fti_utf8_decode((const unsigned char *)w + i, len - i, &c, &ok);
        u[0] = c;
        if (c >= 0x10000) /* a surrogate pair */
            u[0] = 0xD800 + ((c - 0x10000) >> 10), u[1] = 0xDC00 + ((c - 0x10000) & 0x3FF), m = 2;
        for (k = 0; k < m; k++, n += 2) {
            out[n + (le ? 0 : 1)] = (unsigned char)u[k];
            out[n + (le ? 1 : 0)] = (unsigned char)(u[k] >> 8);
        }
    }
    return n;
}

FTI_TEST(store_text_encodings) {
    /* text files as people have them: Windows-1252 / Latin-1, UTF-16 with a byte-order mark
     * (both byte orders), a CSV in Windows-1252; UTF-8 with one stray byte stays UTF-8 */
    static const unsigned char cp[] = "Caf\xe9 cr\xe8me \x96 \x93quoted\x94, 3\x80.\n";
    static const char want[] = "Caf\xc3\xa9 cr\xc3\xa8me \xe2\x80\x93 "
                               "\xe2\x80\x9cquoted\xe2\x80\x9d, "
                               "3\xe2\x82\xac.";
    static const char u8[] = "Caf\xc3\xa9 cr\xc3\xa8me, na\xc3\xafve "
                             "r\xc3\xa9sum\xc3\xa9 \xff ok.\n";
    static const char w_le[] = "Caf\xc3\xa9 na\xc3\xafve \xf0\x9f\x98\x80 days.\n";
    static const char w_be[] = "Long \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 nights, then rain.\n";
    const char *dir = fti_test_tmp("enc");
    const char *home = fti_test_tmp("enc_ws");
    unsigned char u16[256];
    char path[1024], id[65];
    fti_buf csv, got;
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    snprintf(path, sizeof path, "%s/cp1252.txt", dir);
    REQUIRE(fti_test_write_file(path, cp, sizeof cp - 1) == 0);
    snprintf(path, sizeof path, "%s/utf16le.txt", dir);
    REQUIRE(fti_test_write_file(path, u16, utf16_of(w_le, 1, u16)) == 0);
    snprintf(path, sizeof path, "%s/utf16be.txt", dir);
    REQUIRE(fti_test_write_file(path, u16, utf16_of(w_be, 0, u16)) == 0);
    snprintf(path, sizeof path, "%s/mostly_utf8.txt", dir);
    REQUIRE(fti_test_write_file(path, u8, sizeof u8 - 1) == 0);
    memset(&csv, 0, sizeof csv);
    fti_buf_puts(&csv, "date,text\n2023-01-01,\"In a table: ");
    fti_buf_append(&csv, cp, sizeof cp - 2);
    fti_buf_puts(&csv, "\"\n");
    snprintf(path, sizeof path, "%s/notes.csv", dir);
    REQUIRE(fti_test_write_file(path, csv.data, csv.len) == 0);
    memset(&got, 0, sizeof got);
    REQUIRE(ingest1(home, dir, NULL, id, NULL) == FTI_OK);
    REQUIRE(read_docs(home, id, &got));
    fti_buf_putc(&got, '\0');
    {   /* cp1252.txt and notes.csv */
        const char *p = got.data, *q;
        int k = 0;
        while ((q = strstr(p, want)) != NULL) k++, p = q + 1;
        CHECK_EQ_INT(k, 2);
    }
    CHECK(strstr(got.data, "Caf\xc3\xa9 na\xc3\xafve \xf0\x9f\x98\x80 days.") != NULL);
    CHECK(strstr(got.data, "Long \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 nights") != NULL);
    CHECK(strstr(got.data, "na\xc3\xafve r\xc3\xa9sum\xc3\xa9") != NULL); /* not read as 1252 */
    CHECK(strstr(got.data, "\xc3\x83") == NULL);                         /* no mojibake */
    CHECK_EQ_INT(manifest_int(home, id, "counts", "documents"), 5);
    fti_buf_free(&csv);
    fti_buf_free(&got);
}

/* Writes text as the file name in dir; 0 on success. */
static int put(const char *dir, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return fti_test_write_file(path, text, strlen(text));
}

/* A vocab_size no tokenizer can have is named with the range (it said "tokenizer: training
 * failed", overwriting the reason). */
FTI_TEST(store_ingest_bad_vocab_size) {
    const char *dir = fti_test_tmp("vocab");
    const char *home = fti_test_tmp("vocab_ws");
    const char *paths[1];
    fti_ingest_opts o;
    fti_error err;
    char id[65];
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    REQUIRE(put(dir, "a.txt", "A short note about bread, rye and patience on Sundays.") == 0);
    memset(&o, 0, sizeof o);
    o.n_threads = 1;
    o.vocab_size = 100;
    paths[0] = dir;
    CHECK_EQ_INT(fti_store_ingest(home, paths, 1, &o, id, NULL, &err), FTI_ERR_INVALID);
    CHECK(strstr(err.msg, "vocab_size 100") != NULL);
    CHECK(strstr(err.msg, "259 to") != NULL);
    o.vocab_size = 259; /* the smallest: no merges needed */
    CHECK_EQ_INT(fti_store_ingest(home, paths, 1, &o, id, NULL, &err), FTI_OK);
}

FTI_TEST(store_json_csv_html_fields) {
    /* exports put HTML in the text field (Mastodon, WordPress, Ghost) or escape & < > (Twitter,
     * Reddit): the stored text is the text a reader sees */
    static const char json[] =
        "[{\"content\":\"<p>Bread is patience.</p><p>I bake on Sundays &amp; give half away. "
        "It&#8217;s the best part.</p>\",\"created_at\":\"2020-01-01\"},"
        "{\"full_text\":\"Walked to the lighthouse &amp; the fog was thick &lt;3 all day long\"},"
        "{\"text\":\"Plain text with 2 < 3 and a & b stays as it is, of course.\"}]";
    static const char csv[] =
        "id,body\n1,\"Yes, I keep a rye starter &amp; feed it <em>weekly</em>.\"\n";
    const char *dir = fti_test_tmp("fields");
    const char *home = fti_test_tmp("fields_ws");
    char id[65];
    fti_buf got;
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    REQUIRE(put(dir, "posts.json", json) == 0 && put(dir, "comments.csv", csv) == 0);
    memset(&got, 0, sizeof got);
    REQUIRE(ingest1(home, dir, NULL, id, NULL) == FTI_OK);
    REQUIRE(read_docs(home, id, &got));
    fti_buf_putc(&got, '\0');
    CHECK(strstr(got.data,
                 "Bread is patience.\\n\\nI bake on Sundays & give half away. It\xe2\x80\x99s") !=
          NULL);
    CHECK(strstr(got.data, "lighthouse & the fog was thick <3 all day") != NULL);
    CHECK(strstr(got.data, "with 2 < 3 and a & b stays") != NULL);
    CHECK(strstr(got.data, "rye starter & feed it weekly.") != NULL);
    CHECK(strstr(got.data, "&amp;") == NULL && strstr(got.data, "<p>") == NULL);
    CHECK_EQ_INT(manifest_int(home, id, "counts", "documents"), 4);
    fti_buf_free(&got);
}

/* One file of an export test: its name and bytes. */
typedef struct export_file {
    const char *name, *bytes;
} export_file;

/* Writes the files (with the folders their names hold) into a new folder tmp(name), ingests it
 * into home (tmp(name) + "_ws", at least 512 bytes) with o and reads the documents back,
 * NUL-terminated, into got (zeroed first). */
static int ingest_exports(const char *name, const export_file *files, size_t n,
                          const fti_ingest_opts *o, char *home, char id[65], fti_buf *got) {
    char dir[480], path[1024];
    size_t i;
    snprintf(dir, sizeof dir, "%s", fti_test_tmp(name));
    snprintf(home, 512, "%s_ws", dir);
    memset(got, 0, sizeof *got);
    if (fti_mkdirs(dir, NULL) != FTI_OK) return 0;
    for (i = 0; i < n; i++) {
        const char *slash = strrchr(files[i].name, '/');
        if (slash) {
            snprintf(path, sizeof path, "%s/%.*s", dir, (int)(slash - files[i].name),
                     files[i].name);
            if (fti_mkdirs(path, NULL) != FTI_OK) return 0;
        }
        if (put(dir, files[i].name, files[i].bytes) != 0) return 0;
    }
    if (ingest1(home, dir, o, id, NULL) != FTI_OK || !read_docs(home, id, got)) return 0;
    fti_buf_putc(got, '\0');
    return !got->oom;
}

/* The title and date of the document of version id whose source ends in name ("" when it has
 * none); 0 when there is no such document. */
static int doc_title_date(const char *home, const char *id, const char *name, char *title,
                          char *date) {
    fti_buf docs;
    const char *p, *e;
    int found = 0;
    memset(&docs, 0, sizeof docs);
    if (!read_docs(home, id, &docs)) return 0;
    for (p = docs.data; !found && p && p < docs.data + docs.len; p = e + 1) {
        fti_json_doc *d = NULL;
        const char *src;
        size_t n = strlen(name), k;
        e = (const char *)memchr(p, '\n', (size_t)(docs.data + docs.len - p));
        if (!e) e = docs.data + docs.len;
        if (fti_json_parse(p, (size_t)(e - p), NULL, &d, NULL, NULL) != FTI_OK) continue;
        src = fti_json_get_str(fti_json_root(d), "source", "");
        k = strlen(src);
        if (k >= n && strcmp(src + k - n, name) == 0) {
            snprintf(title, 200, "%s", fti_json_get_str(fti_json_root(d), "title", ""));
            snprintf(date, 32, "%s", fti_json_get_str(fti_json_root(d), "date", ""));
            found = 1;
        }
        fti_json_free(d);
    }
    fti_buf_free(&docs);
    return found;
}

/* A text file's title is its name as a reader would write it: underscores (and a slug's
 * dashes) as blanks, a leading date left out of it and kept as the document's date (until
 * processing format 14 the title was the name as it is: "2024-05-01 walking to work",
 * "walking_to_work", and a note had no date). */
FTI_TEST(store_txt_title_from_file_name) {
    static const export_file files[] = {
        {"2024-05-01 walking to work.txt",
         "The bus was late again, so I walked the long way past the river and the mill.\n"},
        {"walking_to_work.txt",
         "Rain all morning; the umbrella gave up halfway across the bridge by the station.\n"},
        {"notes-on-baking.txt",
         "The rye starter wants feeding twice a day in summer and once in the winter months.\n"},
        {"Jean-Paul on work.txt",
         "Jean-Paul says work expands to fill whatever hours a stubborn person gives to it.\n"},
        {"2024_02_29-leap_day.txt",
         "A leap day spent mostly indoors reading letters from a friend who lives abroad.\n"},
        {"2024-02-30 not a day.txt",
         "An impossible day in the name stays in the title, as the name has it written.\n"},
        {"2023-11-05.txt",
         "Only a date for a name: the title keeps it, and it is the document's date too.\n"},
        {"dated.md", "---\ndate: 2020-01-02\n---\nFront matter has the date here, so the name's "
                     "own date is not needed for this note.\n"}};
    static const char *const want[][3] = {
        {"2024-05-01 walking to work.txt", "walking to work", "2024-05-01"},
        {"walking_to_work.txt", "walking to work", ""},
        {"notes-on-baking.txt", "notes on baking", ""},
        {"Jean-Paul on work.txt", "Jean-Paul on work", ""},
        {"2024_02_29-leap_day.txt", "leap day", "2024-02-29"},
        {"2024-02-30 not a day.txt", "2024-02-30 not a day", ""},
        {"2023-11-05.txt", "2023-11-05", "2023-11-05"},
        {"dated.md", "dated", "2020-01-02"}};
    char home[512], id[65], title[200], date[32];
    fti_buf got;
    size_t i;
    REQUIRE(ingest_exports("txt_titles", files, sizeof files / sizeof files[0], NULL, home, id,
                           &got));
    for (i = 0; i < sizeof want / sizeof want[0]; i++) {
        title[0] = date[0] = 0;
        CHECK(doc_title_date(home, id, want[i][0], title, date));
        CHECK_EQ_STR(title, want[i][1]);
        CHECK_EQ_STR(date, want[i][2]);
    }
    fti_buf_free(&got);
}

/* An input folder's symbolic links are not followed (one could lead outside it, to ~/.ssh) and
 * its FIFOs not read, but each is in the report with its reason (they were left out without a
 * word); the walk tells them in its sorted order. */
static fti_result walk_skip_note(void *user, const char *path, const char *why) {
    fti_buf *b = (fti_buf *)user;
    fti_buf_printf(b, "%s: %.20s\n", fti_path_base(path), why);
    return FTI_OK;
}
static fti_result walk_file_note(void *user, const char *path, uint64_t size) {
    fti_buf *b = (fti_buf *)user;
    fti_buf_printf(b, "%s %lu\n", fti_path_base(path), (unsigned long)size);
    return FTI_OK;
}
FTI_TEST(store_walk_links_in_the_report) {
    static const export_file files[] = {
        {"a.txt", "A note of my own about the rye bread I baked on Sunday morning.\n"}};
    char dir[512], p1[1024], p2[1024], home[512], id[65];
    fti_buf got, w;
    snprintf(dir, sizeof dir, "%s", fti_test_tmp("links"));
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    snprintf(p1, sizeof p1, "%s/b_link.txt", dir);
    REQUIRE(symlink("a.txt", p1) == 0);
    snprintf(p1, sizeof p1, "%s/c_dir", dir);
    REQUIRE(symlink(".", p1) == 0); /* a loop, were it followed */
    snprintf(p2, sizeof p2, "%s/d_fifo.txt", dir);
    REQUIRE(mkfifo(p2, 0600) == 0);
    memset(&w, 0, sizeof w);
    REQUIRE(put(dir, "a.txt", files[0].bytes) == 0);
    CHECK(fti_walk_skips(dir, walk_file_note, walk_skip_note, &w, NULL) == FTI_OK);
    fti_buf_putc(&w, 0);
    CHECK_EQ_STR(w.data, "a.txt 64\nb_link.txt: a symbolic link, not\nc_dir: a symbolic link, "
                         "not\nd_fifo.txt: not a regular file (\n");
    fti_buf_free(&w);
    REQUIRE(ingest_exports("links", files, 1, NULL, home, id, &got));
    CHECK(strstr(got.data, "rye bread") != NULL);
    CHECK_EQ_INT(manifest_int(home, id, "counts", "documents"), 1);
    CHECK_EQ_INT(rejected_for(home, id, "unsupported_type"), 3);
    fti_buf_free(&got);
}

FTI_TEST(store_nested_json_exports) {
    /* the real shapes of the exports people have: records in wrappers and nested arrays, text as
     * objects and runs, Facebook's mojibake, tweets' links, mentions, dates and retweets,
     * mailboxes and tweets.js known by their content, semicolon-separated CSV, Excel's sep= line */
    static const export_file files[] = {
        {"data/tweets.js",
         "window.YTD.tweets.part0 = [ {\"tweet\": {\"full_text\": \"Baked a rye loaf with "
         "patience today https://t.co/AbC12 https://t.co/Pic9\", \"created_at\": \"Wed Oct 10 "
         "20:19:24 +0000 2018\", \"entities\": {\"urls\": [{\"url\": \"https://t.co/AbC12\", "
         "\"expanded_url\": \"https://example.com/rye\"}]}, \"extended_entities\": {\"media\": "
         "[{\"url\": \"https://t.co/Pic9\"}]}}},\n {\"tweet\": {\"full_text\": \"RT @bob: his "
         "words "
         "about wheat and speed, not mine\"}},\n {\"tweet\": {\"full_text\": \"@bob @carol_x I "
         "think the dough needs more time in the cold.\", \"in_reply_to_screen_name\": "
         "\"bob\"}}]"},
        {"outbox.json",
         "{\"@context\": [\"https://www.w3.org/ns/activitystreams\", {\"ostatus\": \"x\"}], "
         "\"orderedItems\": [{\"type\": \"Create\", \"object\": {\"type\": \"Note\", \"content\": "
         "\"<p>A Mastodon note about baking with patience.</p>\", \"published\": "
         "\"2021-03-03T10:00:00Z\"}}, {\"type\": \"Announce\", \"object\": \"https://x/1\"}, "
         "{\"type\": \"Create\", \"object\": {\"inReplyTo\": \"https://x/2\", \"content\": "
         "\"<p><span class=\\\"h-card\\\"><a href=\\\"https://x/@bob\\\" class=\\\"u-url "
         "mention\\\">@<span>bob</span></a></span> I agree about the rye and the "
         "time.</p>\"}}]}"},
        {"your_posts_1.json",
         "[{\"timestamp\": 1600000000, \"data\": [{\"post\": \"Caf\\u00c3\\u00a9 au lait with "
         "friends on the terrace \\u00f0\\u009f\\u0098\\u0082\"}], \"title\": \"Posted.\"}]"},
        {"result.json",
         "{\"name\": \"Saved\", \"type\": \"saved_messages\", \"messages\": [{\"id\": 1, "
         "\"type\": \"message\", \"date\": \"2022-01-01T10:00:00\", \"from\": \"Alice\", \"text\": "
         "[\"Remember to \", {\"type\": \"bold\", \"text\": \"feed the starter\"}, \" before the "
         "trip.\"]}, {\"id\": 2, \"type\": \"service\", \"text\": \"\"}]}"},
        {"ghost.json",
         "{\"db\": [{\"meta\": {\"version\": \"5.0\"}, \"data\": {\"posts\": [{\"title\": \"On "
         "crumb\", \"html\": \"<p>ignored</p>\", \"plaintext\": \"A long essay about crumb "
         "written in Ghost.\", \"published_at\": \"2020-02-02\"}], \"users\": [{\"name\": "
         "\"Alice\"}]}}]}"},
        {"feed.json",
         "{\"version\": \"https://jsonfeed.org/version/1.1\", \"title\": \"Blog\", \"authors\": "
         "[{\"name\": \"Alice\"}], \"items\": [{\"id\": \"1\", \"title\": \"Feed item\", "
         "\"content_text\": \"An item of the JSON feed about ovens.\"}]}"},
        {"wp.json",
         "[{\"title\": {\"rendered\": \"Heat\"}, \"content\": {\"rendered\": \"<p>WordPress text "
         "about ovens &amp; heat.</p>\"}, \"date\": \"2019-01-01T00:00:00\"}]"},
        {"reddit.json",
         "{\"kind\": \"Listing\", \"data\": {\"children\": [{\"kind\": \"t1\", \"data\": "
         "{\"body\": \"A Reddit comment about proofing baskets.\", \"created_utc\": 1500000000.0, "
         "\"author\": \"alice\"}}]}}"},
        {"comments.json",
         "{\"comments_v2\": [{\"timestamp\": 1600000000, \"data\": [{\"comment\": "
         "{\"timestamp\": 1600000000, \"comment\": \"My comment on a friend's loaf, "
         "well done.\", \"author\": \"Alice\"}}], \"title\": \"Alice commented.\"}]}"},
        {"slack.json",
         "\xEF\xBB\xBF[{\"type\": \"message\", \"user\": \"U1\", \"text\": \"<@U2> A Slack "
         "message about the bakery's <https://x.org/h|opening hours> :tada:\", \"ts\": "
         "\"1700000000.000200\"}, {\"type\": \"message\", \"subtype\": \"channel_join\", "
         "\"text\": \"<@U3> has joined the channel\"}]"},
        {"chat.json",
         "{\"messages\": [{\"from\": \"Alice\", \"text\": \"Tip: use <br> for a break, "
         "and a<b && c>d stays.\"}, {\"from\": \"Alice\", \"forwarded_from\": \"News\", "
         "\"text\": \"Someone else's forwarded words about flour prices.\"}]}"},
        {"comments.jsonl",
         "{\"body\": \"&gt; Garamond is overrated\\n\\nStrongly disagree, it reads well.\"}\n"
         "{\"body\": \"[deleted]\"}\n"},
        {"notes.csv", "author;text\nAlice;Semicolon separated, with a comma inside it.\n"},
        {"excel.csv", "\xEF\xBB\xBFsep=;\r\ntext;author\r\nExcel's own line named the "
                      "separator, a comma too.;Alice\r\n"},
        {"Sent", "From - Mon Mar  2 10:00:00 2020\nX-Mozilla-Status: 0001\nFrom: Alice <a@x.org>\n"
                 "Subject: hi\n\nA mail from the Sent folder of Thunderbird about bread.\n"},
        {"README", "Not a mailbox, just a file without an extension.\n"},
        {"app.js", "console.log('not an archive of tweets');\n"}};
    char home[512], id[65];
    fti_buf got;
    fti_dataset *ds = NULL;
    const fti_json *br;
    REQUIRE(ingest_exports("exports", files, sizeof files / sizeof files[0], NULL, home, id, &got));
    CHECK(strstr(got.data, "\"text\":\"Baked a rye loaf with patience today "
                           "https://example.com/rye\"") != NULL);
    CHECK(strstr(got.data, "\"date\":\"2018-10-10T20:19:24Z\"") != NULL);
    CHECK(strstr(got.data, "\"text\":\"I think the dough needs more time") != NULL);
    CHECK(strstr(got.data, "his words") == NULL && strstr(got.data, "t.co") == NULL);
    CHECK(strstr(got.data, "\"text\":\"A Mastodon note about baking with patience.\"") != NULL);
    CHECK(strstr(got.data, "\"date\":\"2021-03-03T10:00:00Z\"") != NULL);
    CHECK(strstr(got.data, "\"text\":\"I agree about the rye and the time.\"") != NULL);
    CHECK(strstr(got.data, "\"text\":\"Caf\xc3\xa9 au lait with friends on the terrace "
                           "\xf0\x9f\x98\x82\"") != NULL);
    CHECK(strstr(got.data, "\"date\":\"2020-09-13T12:26:40Z\"") != NULL);
    CHECK(strstr(got.data, "\"author\":\"Alice\"") != NULL);
    CHECK(strstr(got.data, "Remember to feed the starter before the trip.") != NULL);
    CHECK(strstr(got.data, "\"title\":\"On crumb\"") != NULL &&
          strstr(got.data, "A long essay about crumb") != NULL &&
          strstr(got.data, "ignored") == NULL);
    CHECK(strstr(got.data, "feed.json#items[0]") != NULL &&
          strstr(got.data, "An item of the JSON feed") != NULL);
    CHECK(strstr(got.data, "\"title\":\"Heat\"") != NULL &&
          strstr(got.data, "WordPress text about ovens & heat.") != NULL);
    CHECK(strstr(got.data, "reddit.json#data.children[0]") != NULL &&
          strstr(got.data, "\"date\":\"2017-07-14T02:40:00Z\"") != NULL);
    CHECK(strstr(got.data, "\"text\":\"Semicolon separated, with a comma inside it.\"") != NULL);
    CHECK(strstr(got.data, "excel.csv#row 2") != NULL &&
          strstr(got.data, "\"text\":\"Excel's own line named the separator, a comma too.\"") !=
              NULL);
    CHECK(strstr(got.data, "\"kind\":\"sent\"") != NULL &&
          strstr(got.data, "A mail from the Sent folder") != NULL);
    CHECK(strstr(got.data, "My comment on a friend's loaf") != NULL &&
          strstr(got.data, "\"title\":\"Alice commented.\"") != NULL);
    CHECK(strstr(got.data, "\"text\":\"A Slack message about the bakery's opening hours\"") !=
              NULL &&
          strstr(got.data, "\"date\":\"2023-11-14T22:13:20Z\"") != NULL);
    CHECK(strstr(got.data, "\"text\":\"Tip: use <br> for a break, and a<b && c>d stays.\"") !=
          NULL);
    CHECK(strstr(got.data, "\"text\":\"Strongly disagree, it reads well.\"") != NULL);
    CHECK(strstr(got.data, "joined") == NULL && strstr(got.data, "flour prices") == NULL);
    CHECK_EQ_INT(manifest_int(home, id, "counts", "documents"), 17);
    REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
    br = fti_json_get(fti_json_get(fti_dataset_manifest(ds), "validation"), "by_reason");
    CHECK_EQ_INT(fti_json_get_int(br, "reshare", -1), 3); /* a retweet, a boost, a forward */
    CHECK_EQ_INT(fti_json_get_int(br, "system_message", -1), 1); /* Slack's channel_join */
    CHECK_EQ_INT(fti_json_get_int(br, "deleted", -1), 1);        /* Reddit's [deleted] */
    CHECK_EQ_INT(fti_json_get_int(br, "no_text", -1), 1);          /* Telegram's service line */
    CHECK_EQ_INT(fti_json_get_int(br, "unsupported_type", -1), 2); /* README, app.js */
    fti_dataset_close(ds);
    fti_buf_free(&got);
}

FTI_TEST(store_more_exports) {
    /* Messenger's status lines, Instagram's captions and comments, Keep's checklists, Day One's
     * Markdown, WordPress's quotes, dates in words */
    static const export_file files[] = {
        {"message_1.json",
         "{\"participants\": [{\"name\": \"Ann Lee\"}, {\"name\": \"Bob\"}], \"messages\": ["
         "{\"sender_name\": \"Ann Lee\", \"content\": \"Ann Lee sent an attachment.\", "
         "\"type\": \"Share\"},"
         "{\"sender_name\": \"Bob\", \"content\": \"You called Ann.\", \"type\": \"Call\"},"
         "{\"sender_name\": \"Bob\", \"content\": \"Reacted \\u00e2\\u009d\\u00a4 to your "
         "message \", \"type\": \"Generic\"},"
         "{\"sender_name\": \"Ann Lee\", \"content\": \"Ann Lee named the group Bakers.\"},"
         "{\"sender_name\": \"Ann Lee\", \"content\": \"You sent a photo.\"},"
         "{\"sender_name\": \"Ann Lee\", \"content\": \"My sister sent a photo of her loaf.\"},"
         "{\"sender_name\": \"Ann Lee\", \"content\": \"Reacted badly to the news, then baked "
         "anyway.\"},"
         "{\"sender_name\": \"Ann Lee\", \"timestamp_ms\": 1600000000000, \"content\": \"The "
         "bread came out dense again, the starter is tired.\", \"type\": \"Generic\"}]}"},
        {"posts_1.json",
         "[{\"media\": [{\"uri\": \"media/1.jpg\", \"creation_timestamp\": 1600000000, "
         "\"title\": \"Morning light over the harbour, coffee in hand.\"}]},"
         "{\"media\": [{\"uri\": \"media/2.jpg\", \"title\": \"\"}, {\"uri\": \"media/3.jpg\", "
         "\"title\": \"\"}], \"title\": \"Two loaves, one success and one lesson.\", "
         "\"creation_timestamp\": 1600000500}]"},
        {"post_comments_1.json",
         "{\"comments_media_comments\": [{\"title\": \"\", \"string_map_data\": {\"Comment\": "
         "{\"value\": \"That crumb looks perfect, what hydration?\"}, \"Media Owner\": "
         "{\"value\": \"bakerfriend\"}, \"Time\": {\"timestamp\": 1610000000}}}]}"},
        {"Keep/market.json",
         "{\"isTrashed\": false, \"title\": \"Market list\", \"userEditedTimestampUsec\": "
         "1600000000000000, \"listContent\": [{\"text\": \"rye flour\", \"isChecked\": false}, "
         "{\"text\": \"sea salt\", \"isChecked\": true}, {\"text\": \"a new banneton\", "
         "\"isChecked\": false}]}"},
        {"Journal.json",
         "{\"metadata\": {\"version\": \"1.0\"}, \"entries\": [{\"uuid\": \"A1\", "
         "\"creationDate\": \"2021-05-06T07:08:09Z\", \"text\": \"# Rain at the coast\\\\.\\n\\n"
         "![](dayone-moment://ABC)\\n\\nWe walked to the **lighthouse** anyway\\\\!\"}]}"},
        {"wp.json",
         "[{\"title\": {\"rendered\": \"Quoting\"}, \"content\": {\"rendered\": \"<p>Before the "
         "quote, my own words.</p><blockquote class=\\\"wp-block-quote\\\"><p>Someone else's "
         "famous line.</p><cite>A. Person</cite></blockquote><p>After it, mine again.</p>\"}, "
         "\"date\": \"June 3, 2019\"},"
         "{\"content\": {\"rendered\": \"<blockquote><p>Only a quote in this post, kept.</p>"
         "</blockquote>\"}, \"date\": \"Tue, Mar 3 2020 at 10:15 PM\"}]"}};
    char home[512], id[65];
    fti_buf got;
    REQUIRE(ingest_exports("exports2", files, sizeof files / sizeof files[0], NULL, home, id,
                           &got));
    CHECK(strstr(got.data, "\"text\":\"The bread came out dense again") != NULL);
    CHECK(strstr(got.data, "\"text\":\"My sister sent a photo of her loaf.\"") != NULL);
    CHECK(strstr(got.data, "\"text\":\"Reacted badly to the news, then baked anyway.\"") !=
          NULL);
    CHECK(strstr(got.data, "attachment") == NULL && strstr(got.data, "called") == NULL &&
          strstr(got.data, "to your message") == NULL && strstr(got.data, "Bakers") == NULL);
    CHECK(strstr(got.data, "\"title\":null,\"author\":null,\"date\":\"2020-09-13T12:26:40Z\","
                           "\"sha256\"") != NULL);
    CHECK(strstr(got.data, "\"text\":\"Morning light over the harbour, coffee in hand.\"") !=
          NULL);
    CHECK(strstr(got.data, "\"text\":\"Two loaves, one success and one lesson.\"") != NULL);
    CHECK(strstr(got.data, "\"date\":\"2021-01-07T06:13:20Z\"") != NULL &&
          strstr(got.data, "\"text\":\"That crumb looks perfect, what hydration?\"") != NULL);
    CHECK(strstr(got.data, "\"title\":\"Market list\"") != NULL &&
          strstr(got.data, "\"text\":\"rye flour\\nsea salt\\na new banneton\"") != NULL);
    CHECK(strstr(got.data, "\"title\":\"Rain at the coast.\"") != NULL &&
          strstr(got.data, "We walked to the lighthouse anyway!") != NULL &&
          strstr(got.data, "dayone") == NULL && strstr(got.data, "**") == NULL);
    CHECK(strstr(got.data, "Before the quote, my own words.") != NULL &&
          strstr(got.data, "After it, mine again.") != NULL &&
          strstr(got.data, "famous line") == NULL && strstr(got.data, "A. Person") == NULL);
    CHECK(strstr(got.data, "\"date\":\"2019-06-03\"") != NULL);
    CHECK(strstr(got.data, "Only a quote in this post, kept.") != NULL &&
          strstr(got.data, "\"date\":\"2020-03-03T22:15:00\"") != NULL);
    CHECK_EQ_INT(manifest_int(home, id, "counts", "documents"), 10);
    CHECK_EQ_INT(rejected_for(home, id, "system_message"), 5);
    fti_buf_free(&got);
}

FTI_TEST(store_export_owner) {
    /* conversations hold both sides: the owner an export's account file names (Twitter's
     * account.js, Facebook's profile, Telegram's personal_information) keeps only their own
     * messages in that export; an export without one keeps everyone's; --authors "*" too */
    static const export_file files[] = {
        {"tw/data/account.js",
         "window.YTD.account.part0 = [ {\"account\": {\"email\": \"ann@example.com\", "
         "\"createdVia\": \"web\", \"username\": \"ann_l\", \"accountId\": \"1234567\", "
         "\"createdAt\": \"2012-01-01T10:00:00.000Z\", \"accountDisplayName\": \"Ann Lee\"}} ]"},
        {"tw/data/direct-messages.js",
         "window.YTD.direct_messages.part0 = [ {\"dmConversation\": {\"conversationId\": "
         "\"1234567-7654321\", \"messages\": [{\"messageCreate\": {\"recipientId\": \"7654321\", "
         "\"text\": \"Mine on Twitter: the rye needs a longer proof tonight.\", \"senderId\": "
         "\"1234567\", \"createdAt\": \"2020-01-01T10:00:00.000Z\"}}, {\"messageCreate\": "
         "{\"recipientId\": \"1234567\", \"text\": \"Theirs on Twitter: which flour do you buy "
         "for it?\", \"senderId\": \"7654321\", \"createdAt\": "
         "\"2020-01-01T10:05:00.000Z\"}}]}} ]"},
        {"fb/personal_information/profile_information/profile_information.json",
         "{\"profile_v2\": {\"name\": {\"full_name\": \"Ann L\\u00c3\\u00a9e\", \"first_name\": "
         "\"Ann\"}, \"emails\": {\"emails\": [\"ann@example.com\"]}}}"},
        {"fb/messages/inbox/bob_1/message_1.json",
         "{\"participants\": [{\"name\": \"Ann L\\u00c3\\u00a9e\"}, {\"name\": \"Bob Stone\"}], "
         "\"messages\": [{\"sender_name\": \"Bob Stone\", \"timestamp_ms\": 1600000100000, "
         "\"content\": \"Theirs on Messenger: are you coming to the market on Sunday?\"}, "
         "{\"sender_name\": \"Ann L\\u00c3\\u00a9e\", \"timestamp_ms\": 1600000000000, "
         "\"content\": \"Mine on Messenger: the bread came out dense again.\"}]}"},
        {"tg/result.json",
         "{\"about\": \"Here is the data you requested.\", \"personal_information\": "
         "{\"user_id\": 42, \"first_name\": \"Ann\", \"last_name\": \"Lee\", \"username\": "
         "\"@ann_l\"}, \"chats\": {\"about\": \"x\", \"list\": [{\"name\": \"Bob\", \"type\": "
         "\"personal_chat\", \"id\": 7, \"messages\": [{\"id\": 1, \"type\": \"message\", "
         "\"date\": \"2020-01-01T10:00:00\", \"from\": \"Ann Lee\", \"from_id\": \"user42\", "
         "\"text\": \"Mine on Telegram: I fed the starter twice today.\"}, {\"id\": 2, \"type\": "
         "\"message\", \"date\": \"2020-01-01T10:01:00\", \"from\": \"Bob\", \"from_id\": "
         "\"user7\", \"text\": \"Theirs on Telegram: twice seems a lot to me.\"}]}]}}"},
        {"old/message_1.json",
         "{\"participants\": [{\"name\": \"Carol\"}, {\"name\": \"Dan\"}], \"messages\": ["
         "{\"sender_name\": \"Carol\", \"content\": \"Carol, no account file: kept as before.\"},"
         "{\"sender_name\": \"Dan\", \"content\": \"Dan, no account file: kept as before.\"}]}"}};
    char home[512], id[65];
    fti_buf got;
    fti_dataset *ds = NULL;
    const fti_json *br;
    fti_ingest_opts o;
    int i;
    for (i = 0; i < 2; i++) {
        memset(&o, 0, sizeof o);
        if (i == 1) o.authors = "*";
        REQUIRE(ingest_exports(i ? "owner_all" : "owner", files, sizeof files / sizeof files[0],
                               &o, home, id, &got));
        CHECK(strstr(got.data, "Mine on Twitter") != NULL);
        CHECK(strstr(got.data, "Mine on Messenger") != NULL);
        CHECK(strstr(got.data, "Mine on Telegram") != NULL);
        CHECK(strstr(got.data, "Carol, no account file") != NULL);
        CHECK(strstr(got.data, "Dan, no account file") != NULL);
        CHECK(strstr(got.data, "\"kind\":\"message\"") != NULL);
        CHECK((strstr(got.data, "Theirs on Twitter") != NULL) == i);
        CHECK((strstr(got.data, "Theirs on Messenger") != NULL) == i);
        CHECK((strstr(got.data, "Theirs on Telegram") != NULL) == i);
        CHECK(strstr(got.data, "ann@example.com") == NULL); /* the account file is no text */
        CHECK_EQ_INT(manifest_int(home, id, "counts", "documents"), i ? 8 : 5);
        REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
        br = fti_json_get(fti_json_get(fti_dataset_manifest(ds), "validation"), "by_reason");
        CHECK_EQ_INT(fti_json_get_int(br, "other_author", 0), i ? 0 : 3);
        CHECK_EQ_INT(fti_json_get_int(br, "account_info", -1), 3);
        {
            const fti_json *rj = fti_json_get(
                fti_json_get(fti_dataset_manifest(ds), "validation"), "rejections");
            const fti_json *e;
            int other = 0;
            for (e = rj ? rj->child : NULL; e; e = e->next) {
                const fti_json *d = fti_json_get(e, "detail"), *rs = fti_json_get(e, "reason");
                other += d && rs && strcmp(rs->str, "other_author") == 0 &&
                         strstr(d->str, "a message from \"7654321\"") &&
                         strstr(d->str, "owner is \"1234567, ann_l, Ann Lee\"");
            }
            CHECK_EQ_INT(other, !i);
        }
        fti_dataset_close(ds);
        fti_buf_free(&got);
    }
}

/* One message of a Messenger-style export (the conversation tests below). */
#define FTI__MSG(who, text) "{\"sender_name\": \"" who "\", \"content\": \"" text "\"}"

FTI_TEST(store_conversation_owner_inferred) {
    /* an export of conversations without its account file: in a folder of three or more
     * conversations the one sender of them all is the owner (their messages alone stay); one
     * conversation, or one the owner never wrote in, or two people in all of them: everyone's
     * stay (the last said in the report); --authors "*" too */
    static const export_file files[] = {
        {"fb/messages/inbox/bob_1/a.json",
         "{\"participants\": [{\"name\": \"Ann Lee\"}, {\"name\": \"Bob Stone\"}], "
         "\"messages\": [" FTI__MSG("Bob Stone", "Theirs, Bob: are you coming on Sunday?") ", "
         FTI__MSG("Ann Lee", "Mine, to Bob: the bread came out dense again.") "]}"},
        /* a deeper folder's file sorts between the conversation's: a folder of its own */
        {"fb/messages/inbox/bob_1/b/x.json",
         "{\"messages\": [" FTI__MSG("Zed Oak", "Deeper, Zed: a folder of one conversation.")
         ", " FTI__MSG("Yan Oak", "Deeper, Yan: so everyone here stays.") "]}"},
        {"fb/messages/inbox/bob_1/c.json",
         "{\"messages\": [" FTI__MSG("Bob Stone", "Theirs, Bob again: bring the big basket.")
         "]}"},
        {"fb/messages/inbox/cara_2/message_1.json",
         "{\"messages\": [" FTI__MSG("Cara Moss", "Theirs, Cara: the rye was lovely, thanks.")
         ", " FTI__MSG("Ann Lee", "Mine, to Cara: next time with caraway seeds.") "]}"},
        {"fb/messages/inbox/cara_2/message_2.json",
         "{\"messages\": [" FTI__MSG("Cara Moss", "Theirs, Cara again: bring the starter.")
         "]}"},
        {"fb/messages/inbox/hal_3/message_1.json",
         "{\"messages\": [" FTI__MSG("Hal Birch", "Theirs, Hal: the mill is closed on Monday.")
         ", " FTI__MSG("Ann Lee", "Mine, to Hal: then Tuesday, with the sacks.") "]}"},
        {"one/inbox/dan_1/message_1.json",
         "{\"messages\": [" FTI__MSG("Dan Ray", "One conversation, Dan: everyone stays.") ", "
         FTI__MSG("Eve Ray", "One conversation, Eve: everyone stays too.") "]}"},
        {"pair/inbox/g1/message_1.json",
         "{\"messages\": [" FTI__MSG("Finn Ash", "Two in both, Finn: everyone stays.") ", "
         FTI__MSG("Gail Ash", "Two in both, Gail: everyone stays too.") "]}"},
        {"pair/inbox/g2/message_1.json",
         "{\"messages\": [" FTI__MSG("Gail Ash", "Two in both, Gail again: still here.") ", "
         FTI__MSG("Finn Ash", "Two in both, Finn again: still here.") "]}"}};
    char home[512], id[65];
    fti_buf got;
    fti_dataset *ds = NULL;
    const fti_json *br;
    fti_ingest_opts o;
    int i;
    for (i = 0; i < 2; i++) {
        memset(&o, 0, sizeof o);
        if (i == 1) o.authors = "*";
        REQUIRE(ingest_exports(i ? "inferred_all" : "inferred", files,
                               sizeof files / sizeof files[0], &o, home, id, &got));
        CHECK(strstr(got.data, "Mine, to Bob") != NULL && strstr(got.data, "Mine, to Cara") &&
              strstr(got.data, "Mine, to Hal"));
        CHECK((strstr(got.data, "Theirs, Hal:") != NULL) == i);
        CHECK((strstr(got.data, "Theirs, Bob:") != NULL) == i);
        CHECK((strstr(got.data, "Theirs, Bob again") != NULL) == i);
        CHECK(strstr(got.data, "Deeper, Zed") && strstr(got.data, "Deeper, Yan"));
        CHECK((strstr(got.data, "Theirs, Cara:") != NULL) == i);
        CHECK((strstr(got.data, "Theirs, Cara again") != NULL) == i);
        CHECK(strstr(got.data, "One conversation, Dan") &&
              strstr(got.data, "One conversation, Eve"));
        CHECK(strstr(got.data, "Two in both, Finn:") && strstr(got.data, "Two in both, Gail:"));
        CHECK_EQ_INT(manifest_int(home, id, "counts", "documents"), i ? 16 : 11);
        REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
        br = fti_json_get(fti_json_get(fti_dataset_manifest(ds), "validation"), "by_reason");
        CHECK_EQ_INT(fti_json_get_int(br, "other_author", 0), i ? 0 : 5);
        CHECK_EQ_INT(fti_json_get_int(br, "owner_inferred", 0), !i);
        CHECK_EQ_INT(fti_json_get_int(br, "owner_not_inferred", 0), !i);
        {
            const fti_json *rj = fti_json_get(
                fti_json_get(fti_dataset_manifest(ds), "validation"), "rejections");
            const fti_json *e;
            int said = 0, other = 0, doubt = 0;
            for (e = rj ? rj->child : NULL; e; e = e->next) {
                const fti_json *d = fti_json_get(e, "detail"), *rs = fti_json_get(e, "reason");
                if (!d || !rs) continue;
                said += strcmp(rs->str, "owner_inferred") == 0 &&
                        strstr(d->str, "inferred: \"Ann Lee\", the one sender in all 3 "
                                       "conversations of inferred/fb/messages/inbox/") != NULL;
                other += strcmp(rs->str, "other_author") == 0 &&
                         strstr(d->str, "owner is \"Ann Lee\" (inferred, see ") != NULL;
                doubt += strcmp(rs->str, "owner_not_inferred") == 0 &&
                         strstr(d->str, "/pair/inbox/: 2 senders (\"Finn Ash\", \"Gail Ash\") "
                                        "are in all 2 conversations") != NULL;
            }
            CHECK_EQ_INT(said, !i);
            CHECK_EQ_INT(other, i ? 0 : 5);
            CHECK_EQ_INT(doubt, !i);
        }
        fti_dataset_close(ds);
        fti_buf_free(&got);
    }
}

FTI_TEST(store_conversation_owner_inferred_many) {
    /* a real inbox: 70 conversations, each with another friend (more than 64 people in the
     * folder), the owner in all of them; the owner's messages alone stay */
    static const char *const w[] = {"rye", "oven", "salt", "crust", "flour", "dough", "yeast",
                                    "basket", "starter", "loaf"};
    export_file files[70];
    char names[70][64], bodies[70][300], home[512], id[65];
    fti_buf got;
    size_t i;
    for (i = 0; i < 70; i++) {
        const char *a = w[i % 10], *b = w[i / 10], *c = w[(i * 7 + 3) % 10];
        snprintf(names[i], sizeof names[i], "fb/messages/inbox/friend_%u/message_1.json",
                 (unsigned)i);
        snprintf(bodies[i], sizeof bodies[i],
                 "{\"messages\": [{\"sender_name\": \"Friend %u\", \"content\": \"Theirs "
                 "%u: %s before %s, then %s.\"}, {\"sender_name\": \"Ann Lee\", \"content\": "
                 "\"Mine %u: %s after %s, and %s.\"}]}",
                 (unsigned)i, (unsigned)i, a, b, c, (unsigned)i, c, a, b);
        files[i].name = names[i];
        files[i].bytes = bodies[i];
    }
    REQUIRE(ingest_exports("inferred_many", files, 70, NULL, home, id, &got));
    CHECK(strstr(got.data, "Mine 69:") != NULL);
    CHECK(strstr(got.data, "Theirs 69:") == NULL);
    CHECK(strstr(got.data, "Theirs") == NULL);
    fti_buf_free(&got);
}

FTI_TEST(store_conversation_owner_inferred_skips) {
    /* conversations one person wrote in (a friend's unanswered message, the owner's to someone
     * who never replied) and a group of 70 say nothing of the owner: the three chats with the
     * owner and one friend each still name her */
    static char big[70 * 80 + 64];
    export_file files[6];
    char home[512], id[65];
    fti_buf got;
    fti_dataset *ds = NULL;
    const fti_json *br;
    size_t i, w = 0;
    w += (size_t)snprintf(big + w, sizeof big - w, "{\"messages\": [");
    for (i = 0; i < 70; i++)
        w += (size_t)snprintf(big + w, sizeof big - w,
                              "%s{\"sender_name\": \"Member %u\", \"content\": \"Group %u: the "
                              "market opens at nine.\"}",
                              i ? ", " : "", (unsigned)i, (unsigned)i);
    snprintf(big + w, sizeof big - w, "]}");
    files[0].name = "fb/messages/inbox/bob_1/message_1.json";
    files[0].bytes = "{\"messages\": [{\"sender_name\": \"Bob Stone\", \"content\": \"Theirs, "
                     "Bob: are you coming on Sunday?\"}, {\"sender_name\": \"Ann Lee\", "
                     "\"content\": \"Mine, to Bob: the bread came out dense again.\"}]}";
    files[1].name = "fb/messages/inbox/cara_2/message_1.json";
    files[1].bytes = "{\"messages\": [{\"sender_name\": \"Cara Moss\", \"content\": \"Theirs, "
                     "Cara: the rye was lovely, thanks.\"}, {\"sender_name\": \"Ann Lee\", "
                     "\"content\": \"Mine, to Cara: next time with caraway seeds.\"}]}";
    files[2].name = "fb/messages/inbox/dan_3/message_1.json";
    files[2].bytes = "{\"messages\": [{\"sender_name\": \"Dan Ray\", \"content\": \"Theirs, "
                     "Dan: a message never answered.\"}]}";
    files[3].name = "fb/messages/inbox/eve_4/message_1.json";
    files[3].bytes = "{\"messages\": [{\"sender_name\": \"Ann Lee\", \"content\": \"Mine, to "
                     "Eve: she never wrote back.\"}]}";
    files[4].name = "fb/messages/inbox/market_5/message_1.json";
    files[4].bytes = big;
    files[5].name = "fb/messages/inbox/hal_6/message_1.json";
    files[5].bytes = "{\"messages\": [{\"sender_name\": \"Hal Birch\", \"content\": \"Theirs, "
                     "Hal: the mill is closed on Monday.\"}, {\"sender_name\": \"Ann Lee\", "
                     "\"content\": \"Mine, to Hal: then Tuesday, with the sacks.\"}]}";
    REQUIRE(ingest_exports("inferred_skips", files, 6, NULL, home, id, &got));
    CHECK(strstr(got.data, "Mine, to Bob") && strstr(got.data, "Mine, to Cara") &&
          strstr(got.data, "Mine, to Eve") && strstr(got.data, "Mine, to Hal"));
    CHECK(strstr(got.data, "Theirs") == NULL);
    CHECK(strstr(got.data, "Group 0:") == NULL && strstr(got.data, "Group 69:") == NULL);
    REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
    br = fti_json_get(fti_json_get(fti_dataset_manifest(ds), "validation"), "by_reason");
    CHECK_EQ_INT(fti_json_get_int(br, "owner_inferred", 0), 1);
    CHECK_EQ_INT(fti_json_get_int(br, "other_author", 0), 74);
    fti_dataset_close(ds);
    fti_buf_free(&got);
}

FTI_TEST(store_conversation_owner_not_inferred_two_groups) {
    /* the owner only reads two group chats, and one friend writes in both: two conversations
     * cannot tell him from the owner, so no owner is inferred (said in the report) and
     * everyone's messages stay, the owner's unanswered one among them */
    static const export_file files[] = {
        {"fb/messages/inbox/bakers_1/message_1.json",
         "{\"messages\": [" FTI__MSG("Bob Stone", "Bob in the bakers' chat: rye on Friday.") ", "
         FTI__MSG("Cara Moss", "Cara in the bakers' chat: I will bring the starter.") "]}"},
        {"fb/messages/inbox/market_2/message_1.json",
         "{\"messages\": [" FTI__MSG("Bob Stone", "Bob in the market chat: stall twelve.") ", "
         FTI__MSG("Dan Ray", "Dan in the market chat: I will be late.") "]}"},
        {"fb/messages/inbox/eve_3/message_1.json",
         "{\"messages\": [" FTI__MSG("Ann Lee", "Ann to Eve: the loaf was dense again.") "]}"}};
    char home[512], id[65];
    fti_buf got;
    fti_dataset *ds = NULL;
    const fti_json *br, *rj, *e;
    int doubt = 0;
    REQUIRE(ingest_exports("not_inferred", files, sizeof files / sizeof files[0], NULL, home, id,
                           &got));
    CHECK(strstr(got.data, "Bob in the bakers'") && strstr(got.data, "Cara in the bakers'"));
    CHECK(strstr(got.data, "Bob in the market") && strstr(got.data, "Dan in the market"));
    CHECK(strstr(got.data, "Ann to Eve") != NULL);
    REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
    br = fti_json_get(fti_json_get(fti_dataset_manifest(ds), "validation"), "by_reason");
    CHECK_EQ_INT(fti_json_get_int(br, "other_author", 0), 0);
    CHECK_EQ_INT(fti_json_get_int(br, "owner_inferred", 0), 0);
    CHECK_EQ_INT(fti_json_get_int(br, "owner_not_inferred", 0), 1);
    rj = fti_json_get(fti_json_get(fti_dataset_manifest(ds), "validation"), "rejections");
    for (e = rj ? rj->child : NULL; e; e = e->next) {
        const fti_json *d = fti_json_get(e, "detail"), *rs = fti_json_get(e, "reason");
        doubt += d && rs && strcmp(rs->str, "owner_not_inferred") == 0 &&
                 strstr(d->str, "/fb/messages/inbox/: \"Bob Stone\" is the one sender in all 2 "
                                "conversations there") != NULL;
    }
    CHECK_EQ_INT(doubt, 1);
    fti_dataset_close(ds);
    fti_buf_free(&got);
}

FTI_TEST(store_conversation_owner_names_any_case) {
    /* a sender's name in other cases ("ann lee", "ANN LEE"; Latin letters too) is one sender:
     * the owner is inferred across them and all her spellings are kept; a chat where only she
     * wrote, under two spellings, is a chat of one sender */
    static const export_file files[] = {
        {"a/inbox/bob_1/message_1.json",
         "{\"messages\": [" FTI__MSG("Bob Stone", "Theirs, Bob: are you coming on Sunday?") ", "
         FTI__MSG("Ann Lee", "Mine, first spelling: the bread came out dense.") "]}"},
        {"a/inbox/cara_2/message_1.json",
         "{\"messages\": [" FTI__MSG("Cara Moss", "Theirs, Cara: the rye was lovely.") ", "
         FTI__MSG("ann lee", "Mine, lower case: next time with caraway seeds.") "]}"},
        {"a/inbox/dan_3/message_1.json",
         "{\"messages\": [" FTI__MSG("Dan Ray", "Theirs, Dan: the mill is closed.") ", "
         FTI__MSG("ANN LEE", "Mine, upper case: then Tuesday, with the sacks.") "]}"},
        {"a/inbox/notes_4/message_1.json",
         "{\"messages\": [" FTI__MSG("Ann Lee", "Mine, a note to myself about salt.") ", "
         FTI__MSG("ann lee", "Mine, another note to myself about yeast.") "]}"},
        {"u/inbox/eve_1/message_1.json",
         "{\"messages\": [" FTI__MSG("Eve Hart", "Theirs, Eve: the oven is free.") ", "
         FTI__MSG("\xC5\x81ucja \xC5\xBB\xC3\xB3\xC5\x82\xC4\x87",
                  "Mine, Lucja: I bake at noon.") "]}"},
        {"u/inbox/fay_2/message_1.json",
         "{\"messages\": [" FTI__MSG("Fay Dunn", "Theirs, Fay: bring flour.") ", "
         FTI__MSG("\xC5\x82ucja \xC5\xBC\xC3\xB3\xC5\x82\xC4\x87",
                  "Mine, lucja: two sacks of it.") "]}"},
        {"u/inbox/gil_3/message_1.json",
         "{\"messages\": [" FTI__MSG("Gil Ross", "Theirs, Gil: the market moved.") ", "
         FTI__MSG("\xC5\x81UCJA \xC5\xBB\xC3\x93\xC5\x81\xC4\x86",
                  "Mine, LUCJA: to the square, then.") "]}"}};
    char home[512], id[65];
    fti_buf got;
    fti_dataset *ds = NULL;
    const fti_json *br;
    REQUIRE(ingest_exports("any_case", files, sizeof files / sizeof files[0], NULL, home, id,
                           &got));
    CHECK(strstr(got.data, "Mine, first spelling") && strstr(got.data, "Mine, lower case") &&
          strstr(got.data, "Mine, upper case") && strstr(got.data, "Mine, a note") &&
          strstr(got.data, "Mine, another note"));
    CHECK(strstr(got.data, "Mine, Lucja") && strstr(got.data, "Mine, lucja") &&
          strstr(got.data, "Mine, LUCJA"));
    CHECK(strstr(got.data, "Theirs") == NULL);
    REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
    br = fti_json_get(fti_json_get(fti_dataset_manifest(ds), "validation"), "by_reason");
    CHECK_EQ_INT(fti_json_get_int(br, "owner_inferred", 0), 2);
    CHECK_EQ_INT(fti_json_get_int(br, "other_author", 0), 6);
    fti_dataset_close(ds);
    fti_buf_free(&got);
}

FTI_TEST(store_name_fold) {
    /* names compare in any case of ASCII and Latin letters (Latin-1, Latin Extended-A) */
    fti__st_owner o;
    CHECK(fti__st_starts_fold("ANN LEE", 7, "ann lee", 7));
    CHECK(fti__st_starts_fold("\xC3\x85SA", 4, "\xC3\xA5sa", 4));           /* ÅSA, åsa */
    CHECK(fti__st_starts_fold("\xC5\x81" "od\xC5\xBA", 5, "\xC5\x82od\xC5\xBA", 5)); /* Ł, ł */
    CHECK(fti__st_starts_fold("\xC5\xB8ves", 5, "\xC3\xBFves", 5));         /* Ÿ, ÿ */
    CHECK(fti__st_starts_fold("\xC5\x90rs", 4, "\xC5\x91rs", 4));           /* Ő, ő */
    CHECK(!fti__st_starts_fold("\xC3\x97", 2, "\xC3\xB7", 2));              /* ×, ÷ */
    CHECK(!fti__st_starts_fold("\xC4\xB0", 2, "\xC4\xB1", 2));              /* İ, ı: not a pair */
    CHECK(!fti__st_starts_fold("\xC3\x85", 2, "\xC3\x86", 2));              /* Å, Æ */
    CHECK(!fti__st_starts_fold("\xC3" "A", 2, "\xC3\xA1", 2));              /* a stray lead byte */
    CHECK(!fti__st_starts_fold("An", 2, "Ann", 3));
    CHECK(fti__st_name_in("\xC3\xA5sa", 4, "\xC3\x85sa Berg", 9));          /* --authors åsa */
    CHECK(!fti__st_name_in("\xC3\xA5s", 3, "\xC3\x85sa Berg", 9));          /* whole words */
    memset(&o, 0, sizeof o);
    fti__st_owner_add(&o, "Ann Lee", 7);
    fti__st_owner_add(&o, "ann lee", 7);
    fti__st_owner_add(&o, "\xC3\x85sa", 4);
    fti__st_owner_add(&o, "\xC3\xA5SA", 4);
    CHECK_EQ_INT(o.n_names, 2);
    CHECK_EQ_INT(fti__st_owner_find(&o, "ANN LEE", 7), 0);
    CHECK_EQ_INT(fti__st_owner_find(&o, "\xC3\xA5sa", 4), 1);
    CHECK_EQ_INT(fti__st_owner_find(&o, "Ann", 3), 2);
    fti_buf_free(&o.names);
}

FTI_TEST(store_owner_add_oom) {
    /* a name that could not be stored is not counted (the names are read back by strlen) */
    fti__st_owner o;
    memset(&o, 0, sizeof o);
    fti_test_alloc_fail_at(1, 1);
    fti__st_owner_add(&o, "Ann Lee", 7);
    fti__st_owner_add(&o, "Bob Stone", 9);
    fti_test_alloc_fail_at(0, 0);
    CHECK(o.names.oom);
    CHECK_EQ_INT(o.n_names, 0);
    CHECK(!fti__st_owner_is(&o, "Ann Lee", 7));
    fti_buf_free(&o.names);
}

FTI_TEST(store_mailbox_owner_by_address) {
    /* the sent mail names the owner by address alone; her own mail elsewhere in the folder shows
     * a name with that address: hers (by the address), where another Ann's is not */
    static const export_file files[] = {
        {"tb/Local Folders/Sent",
         "From - Mon Mar  2 10:00:00 2020\nFrom: ann@example.com\nSubject: rye\n\n"
         "Sent by me: the rye needs a longer proof tonight.\n"},
        {"tb/Local Folders/Inbox",
         "From - Mon Mar  2 12:00:00 2020\nFrom: Ann Lee <ANN@Example.com>\nSubject: note\n\n"
         "A note to myself about the starter feeding times.\n\n"
         "From - Mon Mar  2 13:00:00 2020\nFrom: Ann Lee <ann@other.org>\nSubject: hi\n\n"
         "Another Ann altogether, writing about her garden.\n\n"
         "From - Mon Mar  2 14:00:00 2020\nFrom: Bob Stone <bob@x.org>\nSubject: flour\n\n"
         "Received from Bob: which flour do you buy for the rye?\n"}};
    char home[512], id[65];
    fti_buf got;
    fti_dataset *ds = NULL;
    const fti_json *br;
    REQUIRE(ingest_exports("owner_addr", files, sizeof files / sizeof files[0], NULL, home, id,
                           &got));
    CHECK(strstr(got.data, "Sent by me") != NULL);
    CHECK(strstr(got.data, "A note to myself") != NULL);
    CHECK(strstr(got.data, "Another Ann") == NULL);
    CHECK(strstr(got.data, "Received from Bob") == NULL);
    REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
    br = fti_json_get(fti_json_get(fti_dataset_manifest(ds), "validation"), "by_reason");
    CHECK_EQ_INT(fti_json_get_int(br, "other_author", 0), 2);
    {   /* the address of a sender with a name stays out of the dataset's documents */
        void *docs = NULL;
        size_t len = 0;
        REQUIRE(fti_file_read(fti_dataset_docs_path(ds), 0, &docs, &len, NULL) == FTI_OK);
        const char *line = strstr((const char *)docs, "\"Ann Lee\""), *nl;
        REQUIRE(line != NULL);
        nl = strchr(line, '\n');
        CHECK(nl != NULL && memchr(line, '@', (size_t)(nl - line)) == NULL);
        fti_free(docs);
    }
    fti_dataset_close(ds);
    fti_buf_free(&got);
}

FTI_TEST(store_mailbox_owner) {
    /* a mailbox holds everyone's mail: the sent mail next to it (Thunderbird's "Sent", Gmail's
     * "Sent" label) names the owner, whose mail alone is kept there; a folder without sent mail
     * keeps everyone's; --authors "*" too */
    static const export_file files[] = {
        {"tb/Local Folders/Sent",
         "From - Mon Mar  2 10:00:00 2020\nFrom: Ann Lee <ann@example.com>\nSubject: rye\n\n"
         "Sent by me: the rye needs a longer proof tonight.\n\n"
         "From - Mon Mar  2 11:00:00 2020\nFrom: ann@example.com\nSubject: oven\n\n"
         "Sent by me too: the oven runs hot on the left side.\n"},
        {"tb/Local Folders/Inbox",
         "From - Mon Mar  2 12:00:00 2020\nFrom: Bob Stone <bob@x.org>\nSubject: flour\n\n"
         "Received from Bob: which flour do you buy for the rye?\n\n"
         "From - Mon Mar  2 13:00:00 2020\nFrom: \"Ann Lee\" <ann@example.com>\nSubject: note\n\n"
         "A note to myself about the starter feeding times.\n\n"
         "From - Mon Mar  2 14:00:00 2020\nFrom: ann@example.com\nSubject: list\n\n"
         "My own list: rye flour, salt and a new banneton.\n"},
        {"takeout/Mail/All mail Including Spam and Trash.mbox",
         "From 1 Mon Mar  2 10:00:00 +0000 2020\nX-Gmail-Labels: Sent,Opened\nFrom: Ann Lee "
         "<ann@gmail.com>\nSubject: trip\n\nGmail sent by me: we leave for the coast at dawn.\n\n"
         "From 2 Mon Mar  2 11:00:00 +0000 2020\nX-Gmail-Labels: Inbox,Category Promotions,"
         "Unread\nFrom: Shop <deals@shop.example>\nSubject: deals\n\n"
         "Promotion from a shop: forty percent off every bread knife.\n\n"
         "From 3 Mon Mar  2 12:00:00 +0000 2020\nX-Gmail-Labels: Inbox\nFrom: Ann Lee "
         "<ann@gmail.com>\nSubject: self\n\nGmail to myself: remember the good salt.\n"},
        {"de/Gesendete Elemente.mbox",
         "From - Mon Mar  2 10:00:00 2020\nFrom: Anna Weber <anna@example.de>\nSubject: Brot\n\n"
         "Von mir gesendet: das Roggenbrot braucht mehr Zeit.\n"},
        {"de/Posteingang.mbox",
         "From - Mon Mar  2 10:00:00 2020\nFrom: Jens <jens@example.de>\nSubject: Mehl\n\n"
         "Von Jens empfangen: welches Mehl kaufst du?\n"},
        {"archive/old.mbox",
         "From - Mon Mar  2 10:00:00 2020\nFrom: Carl <carl@x.org>\nSubject: hello\n\n"
         "Carl's mail in a folder without sent mail is kept.\n"}};
    char home[512], id[65];
    fti_buf got;
    fti_dataset *ds = NULL;
    const fti_json *br;
    fti_ingest_opts o;
    int i;
    for (i = 0; i < 2; i++) {
        memset(&o, 0, sizeof o);
        if (i == 1) o.authors = "*";
        REQUIRE(ingest_exports(i ? "mailowner_all" : "mailowner", files,
                               sizeof files / sizeof files[0], &o, home, id, &got));
        CHECK(strstr(got.data, "Sent by me: the rye") != NULL);
        CHECK(strstr(got.data, "Sent by me too") != NULL);
        CHECK(strstr(got.data, "A note to myself") != NULL);
        CHECK(strstr(got.data, "My own list") != NULL);
        CHECK(strstr(got.data, "Gmail sent by me") != NULL);
        CHECK(strstr(got.data, "Gmail to myself") != NULL);
        CHECK(strstr(got.data, "Carl's mail") != NULL);
        CHECK((strstr(got.data, "Received from Bob") != NULL) == i);
        CHECK((strstr(got.data, "Promotion from a shop") != NULL) == i);
        CHECK(strstr(got.data, "Von mir gesendet") != NULL);
        CHECK((strstr(got.data, "Von Jens empfangen") != NULL) == i);
        CHECK_EQ_INT(manifest_int(home, id, "counts", "documents"), i ? 11 : 8);
        REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
        br = fti_json_get(fti_json_get(fti_dataset_manifest(ds), "validation"), "by_reason");
        CHECK_EQ_INT(fti_json_get_int(br, "other_author", 0), i ? 0 : 3);
        fti_dataset_close(ds);
        fti_buf_free(&got);
    }
}

FTI_TEST(store_page_metadata) {
    /* the date and author of HTML pages (Medium's export, <meta>, microformats) and of Markdown
     * front matter; a page's menus, footer and buttons are not its text, a form's text is */
    static const export_file files[] = {
        {"medium/2020-03-03_On-crumb-abc123.html",
         "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Type\" content=\"text/html; "
         "charset=utf-8\"><title>On crumb</title><style>p { x: 1 }</style></head><body>"
         "<article class=\"h-entry\"><header><h1 class=\"p-name\">On crumb</h1></header>"
         "<section data-field=\"body\" class=\"e-content\"><p>Open crumb needs a wet dough and "
         "patience.</p></section><footer><p>By <a href=\"https://medium.com/@ann\" "
         "class=\"p-author h-card\">Ann Lee</a> on <a href=\"https://medium.com/p/abc\"><time "
         "class=\"dt-published\" datetime=\"2020-03-03T10:00:00.000Z\">March 3, 2020</time>"
         "</a>.</p><p>Exported from Medium on March 4, 2021.</p></footer></article></body>"
         "</html>"},
        {"blog/post.html",
         "<html><head><meta property=\"article:published_time\" "
         "content=\"2019-06-01T08:00:00+02:00\">"
         "<meta name=\"author\" content=\"Ann Lee\"><meta property=\"article:author\" "
         "content=\"https://x.org/ann\"></head><body><nav><a href=\"/\">Home</a> <a>About "
         "menu</a></nav><p>A post about the oven's first fire and the smell of it.</p>"
         "<form><p>Form text stays.</p><button>Subscribe to the newsletter</button></form>"
         "<time datetime=\"2001-01-01\">old</time></body></html>"},
        {"blog/other.html",
         "<html><body><p>A guest post by somebody else, about their own garden.</p><p>By <a "
         "rel=\"author\" href=\"/bob\">Bob Stone</a></p></body></html>"},
        {"notes/hugo.md",
         "---\ntitle: \"Starter care\"\ndate: 2021-04-05T09:00:00+02:00\nauthors:\n  - Ann Lee\n"
         "  - Bob\ntags: [bread]\n---\n\nFeed the starter twice a day when it is warm.\n"},
        {"notes/zola.md",
         "+++\ntitle = \"Proofing\"\ndate = \"April 6, 2021\"\nauthor = 'Ann'\n+++\n\nProof in "
         "the cold overnight for a sour loaf.\n"}};
    char home[512], id[65];
    fti_buf got;
    fti_ingest_opts o;
    memset(&o, 0, sizeof o);
    o.authors = "Ann";
    REQUIRE(ingest_exports("pages", files, sizeof files / sizeof files[0], &o, home, id, &got));
    CHECK(strstr(got.data, "\"title\":\"On crumb\",\"author\":\"Ann Lee\",\"date\":"
                           "\"2020-03-03T10:00:00Z\"") != NULL);
    CHECK(strstr(got.data, "Exported from") == NULL && strstr(got.data, "By Ann") == NULL);
    CHECK(strstr(got.data, "\"author\":\"Ann Lee\",\"date\":\"2019-06-01T06:00:00Z\"") != NULL);
    CHECK(strstr(got.data, "\"text\":\"A post about the oven's first fire and the smell of "
                           "it.\\n\\nForm text stays.\\n\\nold\"") != NULL);
    CHECK(strstr(got.data, "menu") == NULL && strstr(got.data, "Subscribe") == NULL);
    CHECK(strstr(got.data, "garden") == NULL); /* Bob's, by rel="author" */
    CHECK(strstr(got.data, "\"title\":\"Starter care\",\"author\":\"Ann Lee\",\"date\":"
                           "\"2021-04-05T07:00:00Z\"") != NULL);
    CHECK(strstr(got.data, "\"title\":\"Proofing\",\"author\":\"Ann\",\"date\":"
                           "\"2021-04-06\"") != NULL);
    CHECK_EQ_INT(manifest_int(home, id, "counts", "documents"), 4);
    CHECK_EQ_INT(manifest_int(home, id, "counts", "rejected"), 1);
    fti_buf_free(&got);
}

FTI_TEST(store_review_false_positives) {
    /* a review's false positives and negatives: author marks read inside their element only,
     * Facebook's album photos no Instagram captions, subject-less sentences kept, stray or custom
     * <nav>/<footer> tags, front matter's comments and author lists */
    static const export_file files[] = {
        {"site/linked.html",
         "<html><head><link rel=\"author\" href=\"https://x.org/ann\"><title>Kitchen notes"
         "</title></head><body><p>Rye needs more water than wheat and a longer rest.</p>"
         "<p><a rel=\"author\" href=\"/ann\"></a>An empty author link names nobody.</p>"
         "</body></html>"},
        {"site/byline.html",
         "<html><body><p class=\"byline\"><span class=\"author vcard\"><a href=\"/ann\">Ann "
         "Lee</a></span></p><p>Salt slows the yeast, so add it after the autolyse.</p>"
         "</body></html>"},
        {"site/stray.html",
         "<html><body><p>Intro of the stray-tag page.</p><footer><p>The rest of the page is "
         "still its text.</p><nav><p>And so is this part after a stray menu tag.</p>"
         "<footer-note>A custom footer note is text.</footer-note><nav-item>So is a custom "
         "menu item.</nav-item><nav><nav-item>Home menu</nav-item></nav><button>Buy now"
         "</button></body></html>"},
        {"album/album_0.json",
         "{\"name\": \"Mobile Uploads\", \"photos\": [{\"uri\": \"photos_and_videos/Mobile/"
         "1.jpg\", \"creation_timestamp\": 1600000000, \"title\": \"Mobile Uploads album\"}, "
         "{\"uri\": \"media/posts/2.jpg\", \"creation_timestamp\": 1600000000, \"title\": "
         "\"Cover Photos album\", \"description\": \"x\"}]}"},
        {"stories.json",
         "{\"ig_stories\": [{\"uri\": \"media/stories/3.jpg\", \"creation_timestamp\": "
         "1600000000, \"title\": \"First loaf from the new oven, proud.\"}]}"},
        {"message_1.json",
         "{\"participants\": [{\"name\": \"Ann Lee\"}], \"messages\": ["
         "{\"sender_name\": \"Ann Lee\", \"content\": \"Missed your call.\"},"
         "{\"sender_name\": \"Ann Lee\", \"content\": \"Named the group chat after the dog.\"},"
         "{\"sender_name\": \"Ann Lee\", \"content\": \"Reacted badly to your message\"},"
         "{\"sender_name\": \"Ann Lee\", \"content\": \"Liked a message\"},"
         "{\"sender_name\": \"Ann Lee\", \"content\": \"Reacted \\u00f0\\u009f\\u0098\\u0082 "
         "to your message\"},"
         "{\"sender_name\": \"Ann Lee\", \"content\": \"Ann Lee left the group.\"}]}"},
        {"notes/comment.md",
         "---\ntitle: Hydration # draft title\ndate: 2021-04-05 # first draft\nauthor: \"Ann "
         "# Lee\"\n---\n\nWetter doughs need stronger flour and gentle folds.\n"},
        {"notes/hugo_list.md",
         "---\ntitle: Lists\nauthor: [\"Jane Roe\", \"Bob\"]\n---\n\nA Hugo page whose author "
         "is a list.\n"},
        {"notes/hugo_items.md",
         "---\ntitle: Items\nauthors: # the writers\n  - Jane Roe # editor\n  - Bob\n---\n\n"
         "Another Hugo page, its authors one per line.\n"}};
    char home[512], id[65];
    fti_buf got;
    fti_dataset *ds = NULL;
    const fti_json *br;
    REQUIRE(ingest_exports("review_fp", files, sizeof files / sizeof files[0], NULL, home, id,
                           &got));
    /* 1: a <link rel="author"> holds no text (the <title> after it is no author), nor does an
     * empty author link; class="author" names who is inside it */
    CHECK(strstr(got.data, "\"title\":\"Kitchen notes\",\"author\":null") != NULL);
    CHECK(strstr(got.data, "\"author\":\"Ann Lee\"") != NULL &&
          strstr(got.data, "Salt slows the yeast") != NULL);
    CHECK(strstr(got.data, "\"author\":\"An empty") == NULL);
    /* 4: unclosed <footer>/<nav> drop only their tags; custom elements are text; a <nav> ends
     * at </nav>, not at </nav-item> */
    CHECK(strstr(got.data, "Intro of the stray-tag page.\\n\\nThe rest of the page is still its "
                           "text.\\n\\nAnd so is this part after a stray menu tag.") != NULL);
    CHECK(strstr(got.data, "A custom footer note is text.") != NULL &&
          strstr(got.data, "So is a custom menu item.") != NULL);
    CHECK(strstr(got.data, "Home menu") == NULL && strstr(got.data, "Buy now") == NULL);
    /* 2: Facebook's album photos are no captions; an Instagram story's is */
    CHECK(strstr(got.data, "album") == NULL);
    CHECK(strstr(got.data, "\"text\":\"First loaf from the new oven, proud.\"") != NULL);
    /* 3: without a subject only "Liked a message" and emoji reactions are status lines */
    CHECK(strstr(got.data, "\"text\":\"Missed your call.\"") != NULL);
    CHECK(strstr(got.data, "\"text\":\"Named the group chat after the dog.\"") != NULL);
    CHECK(strstr(got.data, "\"text\":\"Reacted badly to your message\"") != NULL);
    CHECK(strstr(got.data, "Liked a") == NULL && strstr(got.data, "Reacted \xf0") == NULL &&
          strstr(got.data, "left the group") == NULL);
    /* 5: front matter's comments go (not a '#' in quotes); Hugo's author lists */
    CHECK(strstr(got.data, "\"title\":\"Hydration\",\"author\":\"Ann # Lee\",\"date\":"
                           "\"2021-04-05\"") != NULL);
    CHECK(strstr(got.data, "\"title\":\"Lists\",\"author\":\"Jane Roe\"") != NULL);
    CHECK(strstr(got.data, "\"title\":\"Items\",\"author\":\"Jane Roe\"") != NULL);
    REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
    br = fti_json_get(fti_json_get(fti_dataset_manifest(ds), "validation"), "by_reason");
    CHECK_EQ_INT(fti_json_get_int(br, "system_message", -1), 3);
    fti_dataset_close(ds);
    CHECK_EQ_INT(manifest_int(home, id, "counts", "documents"), 10);
    fti_buf_free(&got);
    /* the same HTML rules one call deep */
    CHECK(html_is("<p>a</p><nav><p>b</p>", "a\n\nb", NULL));
    CHECK(html_is("<p>a</p><button>b", "a\n\nb", NULL));
    CHECK(html_is("<p>a</p><script>b", "a", NULL)); /* code still runs to the end */
    CHECK(html_is("<nav><nav-item>x</nav-item></nav>y", "y", NULL));
    /* nested menus end at their own end tag; a stray one around them stays a stray tag */
    CHECK(html_is("<nav><nav>m</nav>x</nav>y", "y", NULL));
    CHECK(html_is("<NAV><nav>m</Nav><nav>n</nav>x</nav >y</nav>z", "y\n\nz", NULL));
    CHECK(html_is("<nav>a<nav>m</nav>b", "ab", NULL));
    /* ... but a <button> in an open <button> ends it, as in a browser (format 11; before,
     * "hbd" and "d": an unended outer button was a stray tag, the next </button> ended
     * both) */
    CHECK(html_is("<footer><footer>f</footer>g</footer>h<button>b<button>c</button>d", "hd",
                  NULL));
    CHECK(html_is("<button>a<button>b</button>c</button>d", "cd", NULL));
    CHECK(html_is("</nav>a<nav>b</nav></nav>c", "a\n\nc", NULL));
    /* an end tag in a start tag's attribute is a value, not its end (nor a nested start) */
    CHECK(html_is("<nav title=\"</nav>\">m</nav>y", "y", NULL));
    CHECK(html_is("<nav data-x=\"<nav>\">m</nav>y", "y", NULL));
    CHECK(html_is("<footer title='</footer>'>f</footer><p>z", "z", NULL));
    /* tags in a comment or in a script's text inside a menu are not tags */
    CHECK(html_is("<nav>m<!-- <nav> -->n</nav>y", "y", NULL));
    CHECK(html_is("<nav>m<!-- </nav> -->n</nav>y", "y", NULL));
    CHECK(html_is("<nav><script>var s = '<nav>';</script>m</nav>y", "y", NULL));
    CHECK(html_is("<nav><SCRIPT>document.write('</nav>')</script>m</nav>y", "y", NULL));
    CHECK(html_is("<nav>m<style>/* </nav> */</style></nav><p>y", "y", NULL));
    CHECK(html_is("<nav>m<!-- never closed </nav>y", "m", NULL)); /* a stray tag */
    /* ... nor in another tag's attribute value, as the page reads it: a menu after it ends */
    CHECK(html_is("<nav>a</nav><p title=\"<!--\">x</p><nav>m</nav>y", "x\n\ny", NULL));
    CHECK(html_is("<nav>a</nav><p data-x=\"<script>\">x</p><nav>m</nav>y", "x\n\ny", NULL));
    CHECK(html_is("<nav><a title=\"</nav>\">x</a>m</nav>y", "y", NULL));
    CHECK(html_is("<nav>m<title></nav></title>n</nav>y", "y", NULL)); /* a title's text */
    CHECK(html_is("<footer-note>f</footer-note> <navigation>n</navigation>", "f n", NULL));
    /* a menu, footer or button inside another ends with it, as in a browser: a stray <nav> in
     * a menu's <footer> or <button> neither leaks the menu's text nor swallows what follows */
    CHECK(html_is("<nav><footer><nav>f</footer>m</nav>y", "y", NULL));
    CHECK(html_is("<nav><button><nav></button>m</nav>y", "y", NULL));
    CHECK(html_is("<nav><footer><nav>f</footer>m</nav>y</nav>z", "y\n\nz", NULL));
    CHECK(html_is("<footer><button><footer></button>m</footer>y", "y", NULL));
    CHECK(html_is("<p>a</p><nav>m<button>b<nav>c</button>x</nav><p>y</p>", "a\n\ny", NULL));
    /* ... and only it: strays of other names stay open below (an unclosed <button> is one
     * stray tag; </footer> with no <footer> open ends nothing) */
    CHECK(html_is("<button>b<nav>m</nav>x", "bx", NULL));
    CHECK(html_is("<nav>a</footer>b</nav>c", "c", NULL));
    CHECK(html_is("<footer><nav>f</footer>x<nav>m</nav>y", "xy", NULL));
    CHECK(html_is("<title>T # t</title>z", "z", "T # t"));
    CHECK(md_is("---\ntitle: Notes # draft\n---\nbody", "body", "Notes"));
    CHECK(md_is("---\ntitle: \"A # B\" # c\n---\nbody", "body", "A # B"));
    CHECK(md_is("---\ntitle: C# in a week\n---\nbody", "body", "C# in a week"));
}

static int date_is(const char *in, const char *want) {
    char out[32];
    int ok = fti__st_norm_date(in, strlen(in), out);
    if (!want) return !ok;
    if (!ok || strcmp(out, want) != 0) fprintf(stderr, "    %s -> %s\n", in, ok ? out : "(kept)");
    return ok && strcmp(out, want) == 0;
}

FTI_TEST(store_dates_normalized) {
    /* a zone makes it UTC (dates sort); a local time keeps its clock; an ISO date alone stays */
    CHECK(date_is("2023-06-01T10:00:00-05:00", "2023-06-01T15:00:00Z"));
    CHECK(date_is("2020-03-03T10:04:05+0100", "2020-03-03T09:04:05Z")); /* mail's form */
    CHECK(date_is("2020-01-01T00:30:00+01:00", "2019-12-31T23:30:00Z"));
    CHECK(date_is("2023-01-05 12:34:56 UTC", "2023-01-05T12:34:56Z"));
    CHECK(date_is("2023-01-15T09:30:12.123Z", "2023-01-15T09:30:12Z"));
    CHECK(date_is("2023-01-15T09:30:12", "2023-01-15T09:30:12"));
    CHECK(date_is("2023-01-15 09:30", "2023-01-15T09:30:00"));
    CHECK(date_is("15.01.2023 10:00", "2023-01-15T10:00:00"));
    CHECK(date_is("15.01.2023", "2023-01-15"));
    CHECK(date_is("2021-02-03", NULL));
    CHECK(date_is("yesterday", NULL));
    CHECK(date_is("2023-13-01T00:00", NULL));
    CHECK(date_is("2023-01-01T25:00", NULL));
    CHECK(date_is("2023-01-01T10:00+99", NULL));
    CHECK(date_is("2023-01-01T10:00 tomorrow", NULL));
    /* dates in words: a date alone becomes ISO too; a time with a zone UTC */
    CHECK(date_is("March 3, 2020", "2020-03-03"));
    CHECK(date_is("3 March 2020", "2020-03-03"));
    CHECK(date_is("Tuesday, March 3rd, 2020", "2020-03-03"));
    CHECK(date_is("Sept. 21, 1999", "1999-09-21"));
    CHECK(date_is("Mar 3, 2020, 10:15 PM", "2020-03-03T22:15:00"));
    CHECK(date_is("Tue, Mar 3 2020 at 12:05 a.m.", "2020-03-03T00:05:00"));
    CHECK(date_is("3 Mar 2020 10:15:30 UTC", "2020-03-03T10:15:30Z"));
    CHECK(date_is("Mon, 2 Mar 2020 10:00:00 +0100", "2020-03-02T09:00:00Z"));
    CHECK(date_is("the 3rd of March, 2020", NULL)); /* "the" is no weekday */
    CHECK(date_is("Published March 3, 2020", NULL));
    CHECK(date_is("March 2020", NULL));
    CHECK(date_is("March 3", NULL));
    CHECK(date_is("Mar 3, 2020 13:00 PM", NULL));
    CHECK(date_is("Mar 3, 2020 10:15 CET", NULL));
    CHECK(date_is("Marc 3, 2020", NULL));
    CHECK(date_is("May 32, 2020", NULL));
    /* "10:15PM"; no-break spaces (macOS writes "10:15\u202fPM") are blanks */
    CHECK(date_is("Mar 3, 2020, 10:15PM", "2020-03-03T22:15:00"));
    CHECK(date_is("Mar 3, 2020 12:05a.m.", "2020-03-03T00:05:00"));
    CHECK(date_is("Mar 3, 2020 at 10:15\xe2\x80\xafPM", "2020-03-03T22:15:00"));
    CHECK(date_is("3\xc2\xa0March\xc2\xa0" "2020", "2020-03-03"));
    CHECK(date_is("2023-01-15\xc2\xa0" "09:30", "2023-01-15T09:30:00"));
    CHECK(date_is("Mar 3, 2020 10:15PMT", NULL));
    CHECK(date_is("Mar 3, 2020 10:15UTC", NULL));
    /* the day must be in its month; leap years */
    /* slashes: the day is the number above 12; "3/4/2020" is March 4 or 3 April: as written */
    CHECK(date_is("3/14/2020", "2020-03-14"));
    CHECK(date_is("14/3/2020", "2020-03-14"));
    CHECK(date_is("2020/03/14", "2020-03-14"));
    CHECK(date_is("5/5/2020", "2020-05-05"));
    CHECK(date_is("3/14/2020 10:15 PM", "2020-03-14T22:15:00"));
    CHECK(date_is("3/14/2020, 10:15:30 UTC", "2020-03-14T10:15:30Z"));
    CHECK(date_is("31/12/1999 23:59", "1999-12-31T23:59:00"));
    CHECK(date_is("3/4/2020", NULL));
    CHECK(date_is("13/13/2020", NULL));
    CHECK(date_is("2/30/2020", NULL));
    CHECK(date_is("3/14/20", NULL));
    CHECK(date_is("3/14/2020x", NULL));
    CHECK(date_is("1/2/3/2020", NULL));
    CHECK(date_is("3/14/2020 at noon", NULL));
    CHECK(date_is("February 30, 2021", NULL));
    CHECK(date_is("April 31, 2020", NULL));
    CHECK(date_is("2021-02-30T10:00:00Z", NULL));
    CHECK(date_is("31.04.2020", NULL));
    CHECK(date_is("February 29, 2021", NULL));
    CHECK(date_is("February 29, 2020", "2020-02-29"));
    CHECK(date_is("2000-02-29 10:00", "2000-02-29T10:00:00"));
    CHECK(date_is("1900-02-29 10:00", NULL));
    CHECK(date_is("December 31, 2020", "2020-12-31"));
    {
        char out[32], *m;
        CHECK(!fti__st_twitter_date("Wed Feb 30 20:19:24 +0000 2018", 30, out));
        CHECK(fti__st_twitter_date("Thu Feb 29 20:19:24 +0000 2024", 30, out) &&
              strcmp(out, "2024-02-29T20:19:24Z") == 0);
        m = fti__st_mail_date("Fri, 31 Apr 2020 10:00:00 +0100", 31);
        CHECK(m && strcmp(m, "Fri, 31 Apr 2020 10:00:00 +0100") == 0); /* kept as written */
        fti_free(m);
    }
    /* weekdays are whole words */
    CHECK(date_is("Monday, March 2, 2020", "2020-03-02"));
    CHECK(date_is("Mon March 2, 2020", "2020-03-02"));
    CHECK(date_is("Tues. March 3, 2020", "2020-03-03"));
    CHECK(date_is("Monkey, March 2, 2020", NULL));
    CHECK(date_is("Sunny March 1, 2020", NULL));
    CHECK(date_is("Fridays March 6, 2020", NULL));
}

static int strip_is(const char *in, const char *want) {
    fti_buf b;
    int ok;
    memset(&b, 0, sizeof b);
    fti__st_mail_strip(in, strlen(in), &b);
    ok = b.len == strlen(want) && memcmp(b.data ? b.data : "", want, b.len) == 0;
    if (!ok) fprintf(stderr, "    strip -> \"%.*s\"\n", (int)b.len, b.data ? b.data : "");
    fti_buf_free(&b);
    return ok;
}

FTI_TEST(store_mail_quotes) {
    /* what other people wrote stays out of the author's text: quotes, attributions (also
     * wrapped over two lines and translated), forwarded messages, Outlook's header blocks */
    CHECK(strip_is("Mine.\n\nOn Mon, Mar 2, 2020 at 9:15 PM Bob <\nbob@x.com> wrote:\n\n> his\n",
                   "Mine.\n\n"));
    CHECK(strip_is("Mine.\nLe lun. 2 mars 2020 \xc3\xa0 21:15, Bob <b@x> a \xc3\xa9"
                   "crit :\n> his\n",
                   "Mine.\n"));
    CHECK(strip_is("Mine.\nAm 2. M\xc3\xa4rz schrieb Bob:\n> his\n", "Mine.\n"));
    CHECK(strip_is("See below.\n\n---------- Forwarded message ---------\nFrom: Mill\nnews\n",
                   "See below.\n\n"));
    CHECK(strip_is("Agreed.\n\n________________________________\nFrom: Carol\nSent: Monday\nhers\n",
                   "Agreed.\n\n"));
    CHECK(strip_is("Agreed.\nFrom: Carol <c@x>\nSent: Monday\nTo: me\nhers\n", "Agreed.\n"));
    CHECK(strip_is("From: the top of the hill we saw the sea.\nIt was grey.\n",
                   "From: the top of the hill we saw the sea.\nIt was grey.\n"));
    CHECK(strip_is("Mine.\n>From there, the bus.\n> quoted\n", "Mine.\nFrom there, the bus.\n"));
    CHECK(strip_is("Mine.\n\nSent from my iPhone\n", "Mine.\n\n"));
    CHECK(strip_is("He wrote:\nnot a quote after it.\n", "He wrote:\nnot a quote after it.\n"));
    /* the lines other phones and mail programs add go like "Sent from my iPhone" */
    CHECK(strip_is("Mine.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>\n", "Mine.\n\n"));
    CHECK(strip_is("Mine.\n\nSent with Proton Mail secure email.\n", "Mine.\n\n"));
    CHECK(strip_is("Mine.\nVon meinem iPhone gesendet\n", "Mine.\n"));
    CHECK(strip_is("Von meinem Fenster aus sah ich den See.\n",
                   "Von meinem Fenster aus sah ich den See.\n"));
    /* an inline PGP signed message: its text, unescaped, without the armor and signature */
    CHECK(strip_is("-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\nMine.\r\n"
                   "- - a list item\r\n> his\r\n- -- \r\nAnn\r\n"
                   "-----BEGIN PGP SIGNATURE-----\r\n\r\niQEzBAEB\r\n=abcd\r\n"
                   "-----END PGP SIGNATURE-----\r\n",
                   "Mine.\n- a list item\n"));
    CHECK(strip_is("- a list item of a message not signed\n",
                   "- a list item of a message not signed\n"));
    CHECK(strip_is("Mine.\n-----BEGIN PGP MESSAGE-----\n\nhQEMA+x\n-----END PGP MESSAGE-----\n"
                   "After.\n",
                   "Mine.\nAfter.\n"));
    {   /* HTML mail: the quoted part (Gmail, Apple Mail, Outlook) is cut off */
        static const char h1[] = "<div>Mine.</div><div class=\"gmail_quote\"><div>On x wrote:</div>"
                                 "<blockquote>his</blockquote></div>";
        static const char h2[] = "<p>Mine.</p><blockquote type=\"cite\">his</blockquote>";
        static const char h3[] = "<p>Mine.</p><div id=\"divRplyFwdMsg\">From: x</div>";
        static const char h4[] = "<p>Mine, no quote.</p>";
        static const char h5[] = "<div>Mine.</div><div class=\"yahoo_quoted\">his</div>";
        CHECK_EQ_INT((int)fti__st_mail_html_own(h1, strlen(h1)), 16);
        CHECK_EQ_INT((int)fti__st_mail_html_own(h2, strlen(h2)), 12);
        CHECK_EQ_INT((int)fti__st_mail_html_own(h3, strlen(h3)), 12);
        CHECK_EQ_INT((int)fti__st_mail_html_own(h4, strlen(h4)), (int)strlen(h4));
        CHECK_EQ_INT((int)fti__st_mail_html_own(h5, strlen(h5)), 16);
    }
}

FTI_TEST(store_authors_filter) {
    /* --authors: mail from others and other people's posts are rejected as other_author;
     * documents without an author are kept; a name, or the address, suffices */
    static const char mbox[] =
        "From a@x Mon Mar  2 10:00:00 2020\nFrom: Alice Martin <alice@example.com>\n"
        "Subject: walk\nDate: Mon, 2 Mar 2020 10:00:00 +0100\n\n"
        "Saturday at the bridge, then lunch by the river.\n\n"
        "From b@x Mon Mar  2 11:00:00 2020\nFrom: Bob Smith <bob@example.com>\n"
        "Subject: Re: walk\nDate: Mon, 2 Mar 2020 11:00:00 +0100\n\n"
        "I will bring sandwiches for both of us.\n";
    static const char json[] =
        "[{\"text\":\"My own post about rye bread and patience.\",\"author\":\"alice\"},"
        "{\"text\":\"Someone else's reply about wheat and speed.\",\"author\":\"carol\"}]";
    static const char csv[] = "author,text\nALICE MARTIN,Notes on the long cold proof of dough.\n"
                              "dan,Notes on something Dan wrote about ovens.\n";
    static const char txt[] = "A diary page with no author field at all.\n";
    const char *dir = fti_test_tmp("auth");
    const char *home = fti_test_tmp("auth_ws");
    char id[65];
    fti_ingest_opts o;
    fti_buf got;
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    REQUIRE(put(dir, "mail.mbox", mbox) == 0 && put(dir, "posts.json", json) == 0 &&
            put(dir, "notes.csv", csv) == 0 && put(dir, "diary.txt", txt) == 0);
    memset(&o, 0, sizeof o);
    o.authors = "alice@example.com, Alice";
    memset(&got, 0, sizeof got);
    REQUIRE(ingest1(home, dir, &o, id, NULL) == FTI_OK);
    REQUIRE(read_docs(home, id, &got));
    fti_buf_putc(&got, '\0');
    CHECK(strstr(got.data, "Saturday at the bridge") != NULL);
    CHECK(strstr(got.data, "rye bread") != NULL && strstr(got.data, "cold proof") != NULL);
    CHECK(strstr(got.data, "no author field") != NULL);
    CHECK(strstr(got.data, "sandwiches") == NULL && strstr(got.data, "wheat") == NULL &&
          strstr(got.data, "ovens") == NULL);
    CHECK_EQ_INT(manifest_int(home, id, "counts", "documents"), 4);
    CHECK_EQ_INT(manifest_int(home, id, "counts", "rejected"), 3);
    fti_buf_free(&got);
    { /* names match as whole words, any case */
        static const struct {
            const char *list, *author;
            int kept;
        } cases[] = {{"Ann", "Ann Lee", 1},          {"Ann", "Joanna Annenberg", 0},
                     {"ann", "ann@example.com", 1},  {"Ann Lee", "Dr. ANN LEE <a@b.c>", 1},
                     {"12345", "912345", 0},         {"12345", "12345", 1},
                     {"alice_m", "@alice_m", 1},     {"alice", "alice_m", 0},
                     {"@alice", "@alice", 1},        {"José", "José Díaz", 1},
                     {"Jos", "José", 0},             {"bob, Ann", "Ann", 1},
                     {" , ", "anyone", 1}};
        size_t k;
        for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            memset(&o, 0, sizeof o);
            o.authors = cases[k].list;
            if (fti__st_author_kept(&o, cases[k].author, strlen(cases[k].author)) !=
                cases[k].kept) {
                fprintf(stderr, "    --authors \"%s\" on \"%s\": want %d\n", cases[k].list,
                        cases[k].author, cases[k].kept);
                CHECK(0);
            }
        }
    }
}

FTI_TEST(store_golden_kinds) {
    /* every input kind (txt md html json jsonl csv eml mbox) against the reviewed golden file;
     * FTI_UPDATE_GOLDEN=1 rewrites it */
    char id[65];
    fti_buf got;
    void *want = NULL;
    size_t want_len = 0;
    const char *home = fti_test_tmp("ws");
    memset(&got, 0, sizeof got);
    REQUIRE(ingest1(home, STORE_DATA "/kinds", NULL, id, NULL) == FTI_OK);
    REQUIRE(read_docs(home, id, &got));
    if (getenv("FTI_UPDATE_GOLDEN"))
        fti_test_write_file(STORE_DATA "/kinds.golden.jsonl", got.data, got.len);
    REQUIRE(fti_file_read(STORE_DATA "/kinds.golden.jsonl", 0, &want, &want_len, NULL) == FTI_OK);
    if (got.len != want_len || memcmp(got.data, want, want_len) != 0) {
        /* name the first differing line */
        const char *a = got.data, *b = (const char *)want;
        size_t i = 0, line = 1;
        while (i < got.len && i < want_len && a[i] == b[i]) line += a[i++] == '\n';
        fprintf(stderr, "    docs differ from the golden file at line %lu\n", (unsigned long)line);
        CHECK(0);
    }
    /* the rejections of the kinds folder, by reason */
    CHECK_EQ_INT(manifest_int(home, id, "counts", "documents"), 12);
    CHECK_EQ_INT(manifest_int(home, id, "counts", "rejected"), 5);
    fti_free(want);
    fti_buf_free(&got);
}

/* Writes a file of n bytes: one line of 'a' (letters, so only the length rule applies). */
static int write_big_line(const char *path, size_t n) {
    FILE *f = fopen(path, "wb");
    char buf[65536];
    size_t done = 0;
    if (!f) return 0;
    memset(buf, 'a', sizeof buf);
    while (done < n) {
        size_t k = n - done < sizeof buf ? n - done : sizeof buf;
        if (fwrite(buf, 1, k, f) != k) break;
        done += k;
    }
    return fclose(f) == 0 && done == n;
}

/* The validation's counts at their edges: letters against visible bytes (a UTF-8 character
 * counts once, as a letter; blanks and newlines not at all) and repeated lines (a long line's
 * sentences). */
FTI_TEST(store_validate_letters_and_lines) {
    char id[65], home[4096], in[4096];
    fti_dataset *ds = NULL;
    const fti_json *br;
    snprintf(home, sizeof home, "%s", fti_test_tmp("ws"));
    snprintf(in, sizeof in, "%s", fti_test_tmp("in"));
    REQUIRE(fti_mkdirs(in, NULL) == FTI_OK);
    /* "\xc3\xa9" is e-acute: 6 letters of 12 visible is kept (0.5 is not below the minimum),
     * 5 of 11 is not */
    REQUIRE(fti_test_write_file(fti_test_tmp("in/kept_half.txt"),
                                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 123456",
                                19) == 0);
    REQUIRE(fti_test_write_file(fti_test_tmp("in/few.txt"),
                                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 123456", 17) == 0);
    /* 3 of 5 lines repeat an earlier one: above half */
    REQUIRE(fti_test_write_file(fti_test_tmp("in/rep.txt"),
                                "same line here\nsame line here\nsame line here\nother words\n"
                                "same line here\n",
                                72) == 0);
    /* 2 of 5: kept */
    REQUIRE(fti_test_write_file(fti_test_tmp("in/two_rep.txt"),
                                "first line\nsecond line\nfirst line\nthird one\nsecond line",
                                55) == 0);
    { /* one line over 1,000 bytes: its sentences are the units; one sentence 40 times is
       * rejected (it was kept), 40 different ones are not */
        char one[4096], many[4096];
        size_t k, a = 0, b = 0;
        for (k = 0; k < 40; k++) {
            a += (size_t)snprintf(one + a, sizeof one - a, "The loaf rose well today. ");
            b += (size_t)snprintf(many + b, sizeof many - b, "Loaf number %c%c rose well. ",
                                  (char)('a' + k % 26), (char)('a' + k / 26));
        }
        REQUIRE(a > 1000 && b > 1000);
        REQUIRE(fti_test_write_file(fti_test_tmp("in/one_line.txt"), one, a) == 0);
        REQUIRE(fti_test_write_file(fti_test_tmp("in/many_line.txt"), many, b) == 0);
    }
    REQUIRE(ingest1(home, in, NULL, id, NULL) == FTI_OK);
    REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
    br = fti_json_get(fti_json_get(fti_dataset_manifest(ds), "validation"), "by_reason");
    CHECK_EQ_INT(fti_json_get_int(br, "few_letters", -1), 1);
    CHECK_EQ_INT(fti_json_get_int(br, "repeated_lines", -1), 2);
    CHECK_EQ_INT(
        fti_json_get_int(fti_json_get(fti_dataset_manifest(ds), "counts"), "documents", -1), 3);
    fti_dataset_close(ds);
}

FTI_TEST(store_hostile_inputs) {
    /* every hostile file is rejected with its reason; the run still completes */
    char id[65], cmd[1024];
    const char *dir = fti_test_tmp("in");
    const char *home = fti_test_tmp("ws");
    fti_dataset *ds = NULL;
    const fti_json *br;
    size_t big = (size_t)fti_env_long("FTI_TEST_BIG", 0) ? (size_t)100 << 20 : (size_t)16 << 20;
    snprintf(cmd, sizeof cmd, "cp -r %s/hostile '%s'", STORE_DATA, dir);
    REQUIRE(system(cmd) == 0);
    REQUIRE(write_big_line(fti_test_tmp("in/one_line.txt"), big));
    {
        /* a JSONL line nested far deeper than the parser allows, and a huge JSON string */
        fti_buf b;
        size_t i;
        memset(&b, 0, sizeof b);
        fti_buf_puts(&b, "{\"text\": \"fine line number one here\"}\n");
        for (i = 0; i < 100000; i++) fti_buf_putc(&b, '[');
        fti_buf_putc(&b, '\n');
        REQUIRE(fti_test_write_file(fti_test_tmp("in/deep.jsonl"), b.data, b.len) == 0);
        fti_buf_free(&b);
    }
    REQUIRE(ingest1(home, dir, NULL, id, NULL) == FTI_OK);
    REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
    br = fti_json_get(fti_json_get(fti_dataset_manifest(ds), "validation"), "by_reason");
    CHECK_EQ_INT(fti_json_get_int(br, "too_long", -1), 1);
    CHECK_EQ_INT(fti_json_get_int(br, "mail_truncated", -1), 2);
    CHECK_EQ_INT(fti_json_get_int(br, "mail_bad_base64", -1), 1);
    CHECK_EQ_INT(fti_json_get_int(br, "mail_malformed", -1), 1);
    CHECK_EQ_INT(fti_json_get_int(br, "binary", -1), 1);
    CHECK_EQ_INT(fti_json_get_int(br, "unsupported_type", -1), 1);
    CHECK_EQ_INT(fti_json_get_int(br, "json_error", -1), 4);
    CHECK_EQ_INT(fti_json_get_int(br, "few_letters", -1), 1);
    CHECK_EQ_INT(fti_json_get_int(br, "no_text", -1), 1);
    /* kept: broken.jsonl line 1, deep.jsonl line 1, invalid_utf8.txt (repaired), nested.html,
     * empty_headers.eml (empty Date/Subject values, found by fuzzing) */
    CHECK_EQ_INT(
        fti_json_get_int(fti_json_get(fti_dataset_manifest(ds), "counts"), "documents", -1), 5);
    fti_dataset_close(ds);
    {
        fti_buf rep;
        memset(&rep, 0, sizeof rep);
        CHECK(fti_store_verify(home, NULL, &rep, NULL) == FTI_OK);
        fti_buf_free(&rep);
    }
}

FTI_TEST(store_mail_parts) {
    /* hostile MIME structures straight through the mail parser */
    fti_ingest_opts o = fti_ingest_opts_resolve(NULL);
    fti__st_proc pp;
    fti__st_out out;
    fti_buf m;
    int depth;
    memset(&pp, 0, sizeof pp);
    pp.o = &o;
    /* multipart nested deeper than the limit */
    memset(&m, 0, sizeof m);
    fti_buf_puts(&m, "From: a@b.cd\nSubject: deep\n");
    for (depth = 0; depth < 20; depth++)
        fti_buf_printf(&m, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", depth,
                       depth);
    fti_buf_puts(&m, "Content-Type: text/plain\n\nhello there\n");
    for (depth = 19; depth >= 0; depth--) fti_buf_printf(&m, "--b%d--\n", depth);
    memset(&out, 0, sizeof out);
    fti__st_ingest_mail(&pp, &out, 0, "", m.data, m.len, "mail");
    CHECK_EQ_INT(out.n_docs, 0);
    REQUIRE(out.n_rejs == 1);
    CHECK_EQ_STR(out.rejs[0].reason, "mail_malformed");
    fti__st_out_free(&out);
    fti_buf_free(&m);
    /* base64 with bad padding, multipart without boundary, QP soft breaks */
    {
        static const char *const cases[][2] = {
            {"From: a@b.cd\nContent-Transfer-Encoding: base64\n\nQUJD=RA==\n", "mail_bad_base64"},
            {"From: a@b.cd\nContent-Type: multipart/mixed\n\nbody\n", "mail_malformed"},
            {"From: a@b.cd\nContent-Type: text/plain\n", "mail_truncated"}};
        size_t i;
        for (i = 0; i < 3; i++) {
            memset(&out, 0, sizeof out);
            fti__st_ingest_mail(&pp, &out, 0, "", cases[i][0], strlen(cases[i][0]), "mail");
            CHECK_EQ_INT(out.n_docs, 0);
            if (out.n_rejs == 1)
                CHECK_EQ_STR(out.rejs[0].reason, cases[i][1]);
            else
                CHECK(0);
            fti__st_out_free(&out);
        }
    }
    {
        const char *qp = "From: a@b.cd\nContent-Transfer-Encoding: quoted-printable\n"
                         "Content-Type: text/plain; charset=windows-1252\n\n"
                         "soft=\nbreak and =93quotes=94 and =3D sign=\n";
        memset(&out, 0, sizeof out);
        fti__st_ingest_mail(&pp, &out, 0, "", qp, strlen(qp), "mail");
        REQUIRE(out.n_docs == 1);
        CHECK_EQ_STR(out.docs[0].text, "softbreak and \xE2\x80\x9Cquotes\xE2\x80\x9D and = sign");
        fti__st_out_free(&out);
    }
    {   /* an HTML mail's plain <blockquote> (Outlook.com, Yahoo) is someone else's text, and
         * the attribution before it goes with it */
        const char *h = "From: a@b.cd\nContent-Type: text/html; charset=utf-8\n\n"
                        "<div>Yes, absolutely.</div><div>On Mon, Bob wrote:</div>"
                        "<blockquote style=\"margin:0\">Bob's question.</blockquote>";
        memset(&out, 0, sizeof out);
        fti__st_ingest_mail(&pp, &out, 0, "", h, strlen(h), "mail");
        REQUIRE(out.n_docs == 1);
        CHECK_EQ_STR(out.docs[0].text, "Yes, absolutely.");
        fti__st_out_free(&out);
    }
    {   /* 8-bit Windows text where no charset (or US-ASCII) says so, in the body and in raw
         * headers: read as a text file's, not replaced by U+FFFD; declared UTF-8 stays */
        const char *w = "From: Jos\xe9 <j@b.cd>\nSubject: caf\xe9\n"
                        "Content-Type: text/plain; charset=us-ascii\n\n"
                        "Caf\xe9 au lait, every morning.\n";
        const char *u = "From: Jos\xc3\xa9 <j@b.cd>\nSubject: =?iso-8859-1?q?caf=E9?=\n\n"
                        "Caf\xc3\xa9 au lait, every morning.\n";
        memset(&out, 0, sizeof out);
        fti__st_ingest_mail(&pp, &out, 0, "", w, strlen(w), "mail");
        fti__st_ingest_mail(&pp, &out, 0, "", u, strlen(u), "mail");
        REQUIRE(out.n_docs == 2);
        CHECK_EQ_STR(out.docs[0].text, "Caf\xc3\xa9 au lait, every morning.");
        CHECK_EQ_STR(out.docs[0].title, "caf\xc3\xa9");
        CHECK_EQ_STR(out.docs[0].author, "Jos\xc3\xa9");
        CHECK_EQ_STR(out.docs[1].text, "Caf\xc3\xa9 au lait, every morning.");
        CHECK_EQ_STR(out.docs[1].title, "caf\xc3\xa9");
        CHECK_EQ_STR(out.docs[1].author, "Jos\xc3\xa9");
        fti__st_out_free(&out);
    }
}

FTI_TEST(store_determinism) {
    char id1[65], id2[65], id3[65];
    size_t reused = 0;
    fti_ingest_opts o;
    memset(&o, 0, sizeof o);
    REQUIRE(ingest1(fti_test_tmp("ws1"), STORE_DATA "/kinds", NULL, id1, NULL) == FTI_OK);
    o.n_threads = 1; /* another thread count, another workspace: same id */
    REQUIRE(ingest1(fti_test_tmp("ws2"), STORE_DATA "/kinds", &o, id2, NULL) == FTI_OK);
    CHECK_EQ_STR(id1, id2);
    REQUIRE(ingest1(fti_test_tmp("ws1"), STORE_DATA "/kinds", NULL, id3, &reused) == FTI_OK);
    CHECK_EQ_STR(id1, id3);
    CHECK_EQ_INT(reused, 8);
    {
        /* the stored documents are byte-identical too */
        fti_buf a, b;
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        CHECK(read_docs(fti_test_tmp("ws1"), id1, &a) && read_docs(fti_test_tmp("ws2"), id2, &b));
        CHECK(a.len == b.len && a.len > 0 && memcmp(a.data, b.data, a.len) == 0);
        fti_buf_free(&a);
        fti_buf_free(&b);
    }
    /* another option gives another id */
    o.min_chars = 20;
    REQUIRE(ingest1(fti_test_tmp("ws2"), STORE_DATA "/kinds", &o, id3, NULL) == FTI_OK);
    CHECK(strcmp(id1, id3) != 0);
    {
        char **ids = NULL;
        size_t n = 0;
        CHECK(fti_store_list(fti_test_tmp("ws2"), &ids, &n, NULL) == FTI_OK);
        CHECK_EQ_INT(n, 2);
        fti_store_list_free(ids, n);
    }
}

FTI_TEST(store_incremental) {
    char id1[65], id2[65], got[65];
    size_t reused = 0, add = 0, rem = 0;
    const char *dir = fti_test_tmp("in"), *home = fti_test_tmp("ws");
    fti_buf diff;
    fti_dataset *ds = NULL;
    memset(&diff, 0, sizeof diff);
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    put(dir, "a.txt", "The first file, about apples and orchards in autumn.");
    put(dir, "b.txt", "The second file, about boats on a windy lake.");
    put(dir, "c.jsonl",
        "{\"title\":\"c1\",\"text\":\"Record one of the third file, on cats.\"}\n"
        "{\"title\":\"c2\",\"text\":\"Record two of the third file, on dogs.\"}\n");
    REQUIRE(ingest1(home, dir, NULL, id1, &reused) == FTI_OK);
    CHECK_EQ_INT(reused, 0);
    put(dir, "b.txt", "The second file, rewritten: about trains crossing the plains.");
    put(dir, "d.md", "# New\n\nA new markdown file about deserts and dunes.");
    REQUIRE(ingest1(home, dir, NULL, id2, &reused) == FTI_OK);
    CHECK(strcmp(id1, id2) != 0);
    CHECK_EQ_INT(reused, 2); /* a.txt and c.jsonl */
    REQUIRE(fti_dataset_open(&ds, home, NULL, NULL) == FTI_OK);
    CHECK_EQ_STR(fti_dataset_id(ds), id2);
    CHECK_EQ_STR(fti_json_get_str(fti_dataset_manifest(ds), "parent", ""), id1);
    CHECK_EQ_INT(
        fti_json_get_int(fti_json_get(fti_dataset_manifest(ds), "counts"), "documents", -1), 5);
    fti_dataset_close(ds);
    REQUIRE(fti_store_diff(home, id1, id2, &diff, &add, &rem, NULL) == FTI_OK);
    CHECK_EQ_INT(add, 2);
    CHECK_EQ_INT(rem, 1);
    CHECK(strstr(diff.data, "+ ") && strstr(diff.data, "in/d.md"));
    CHECK(strstr(diff.data, "- ") && strstr(diff.data, "in/b.txt"));
    /* prefixes and tags resolve; verify passes */
    {
        char pre[9];
        memcpy(pre, id1, 8);
        pre[8] = 0;
        CHECK(fti_store_resolve(home, pre, got, NULL) == FTI_OK && strcmp(got, id1) == 0);
        CHECK(fti_store_tag(home, "first", id1, NULL) == FTI_OK);
        CHECK(fti_store_resolve(home, "first", got, NULL) == FTI_OK && strcmp(got, id1) == 0);
        CHECK(fti_store_tag(home, "../evil", id1, NULL) != FTI_OK);
        { /* which of the two is wrong, and what a right one is (it said "bad name or id") */
            fti_error e;
            CHECK_EQ_INT(fti_store_tag(home, "bad tag!", id1, &e), FTI_ERR_INVALID);
            CHECK(strstr(e.msg, "tag 'bad tag!': a tag is 1-100 letters") != NULL);
            CHECK_EQ_INT(fti_store_tag(home, "v2", pre, &e), FTI_ERR_INVALID);
            CHECK(strstr(e.msg, "is not a version id") != NULL);
            CHECK(strstr(e.msg, "fti_store_resolve") != NULL);
        }
        CHECK(fti_store_resolve(home, "nosuch", got, NULL) == FTI_ERR_NOT_FOUND);
        { /* the message names the store searched (a wrong home is the usual cause) */
            fti_error e;
            char want[1200];
            snprintf(want, sizeof want, "store %s: no version or tag 'nosuch'", home);
            CHECK(fti_store_resolve(home, "nosuch", got, &e) == FTI_ERR_NOT_FOUND);
            CHECK(strstr(e.msg, want) != NULL);
        }
        { /* while a gc (or a committing ingest) holds the store lock, no tag is written */
            char lp[1100];
            fti_error e;
            int fd;
            snprintf(lp, sizeof lp, "%s/store/lock", home);
            fd = open(lp, O_RDWR | O_CREAT, 0644);
            REQUIRE(fd >= 0);
            REQUIRE(flock(fd, LOCK_EX) == 0);
            CHECK(fti_store_tag(home, "busy", id1, &e) == FTI_ERR_BUSY);
            CHECK(strstr(e.msg, "store/lock") && strstr(e.msg, "gc"));
            CHECK(fti_store_resolve(home, "busy", got, NULL) == FTI_ERR_NOT_FOUND);
            /* bad names and missing versions are refused without the lock */
            CHECK(fti_store_tag(home, "x", "0000000000000000000000000000000000000000000000000000"
                                "000000000000", &e) == FTI_ERR_NOT_FOUND);
            close(fd);
            CHECK(fti_store_tag(home, "busy", id1, NULL) == FTI_OK);
            CHECK(fti_store_resolve(home, "busy", got, NULL) == FTI_OK && strcmp(got, id1) == 0);
        }
    }
    CHECK(fti_store_verify(home, NULL, NULL, NULL) == FTI_OK);
    {
        /* a renamed file is processed again (a txt title comes from its name) */
        char a[1024], z[1024], id3[65];
        snprintf(a, sizeof a, "%s/a.txt", dir);
        snprintf(z, sizeof z, "%s/z.txt", dir);
        REQUIRE(rename(a, z) == 0);
        REQUIRE(ingest1(home, dir, NULL, id3, &reused) == FTI_OK);
        CHECK_EQ_INT(reused, 3); /* b.txt, c.jsonl, d.md */
    }
    fti_buf_free(&diff);
}

/* A deterministic text of n words. */
static void words(fti_rng *r, size_t n, fti_buf *out) {
    static const char *const vocab[] = {
        "river",   "stone",   "light",   "winter",   "garden",  "letter",  "window",
        "silver",  "morning", "shadow",  "harbor",   "candle",  "forest",  "mirror",
        "thunder", "meadow",  "lantern", "journey",  "whisper", "orchard", "compass",
        "valley",  "ember",   "falcon",  "granite",  "horizon", "island",  "jasmine",
        "kettle",  "ladder",  "marble",  "needle",   "ocean",   "pepper",  "quarry",
        "ribbon",  "saddle",  "timber",  "umbrella", "velvet",  "walnut"};
    size_t i;
    for (i = 0; i < n; i++) {
        if (i) fti_buf_putc(out, ' ');
        fti_buf_puts(out, vocab[fti_rng_below(r, (uint32_t)(sizeof vocab / sizeof vocab[0]))]);
    }
}

FTI_TEST(store_near_duplicates) {
    /* base documents, near copies (2 of 100 words changed: Jaccard ~0.9), far copies (30 of 100
     * words changed: ~0.4) and an exact copy; only near and exact copies are dropped */
    fti_rng r;
    fti_buf jl, base[4];
    size_t i;
    char id[65];
    const char *home = fti_test_tmp("ws");
    fti_dataset *ds = NULL;
    const fti_json *dd;
    fti_rng_seed(&r, 42, 1);
    memset(&jl, 0, sizeof jl);
    for (i = 0; i < 4; i++) {
        memset(&base[i], 0, sizeof base[i]);
        words(&r, 100, &base[i]);
        fti_buf_printf(&jl, "{\"title\":\"base %lu\",\"text\":\"%s.\"}\n", (unsigned long)i,
                       base[i].data);
    }
    for (i = 0; i < 4; i++) {
        /* near: replace words 30 and 70 */
        fti_buf t;
        char *p;
        size_t w = 0, k;
        memset(&t, 0, sizeof t);
        fti_buf_puts(&t, base[i].data);
        for (k = 0, p = t.data; k < t.len; k++)
            if (t.data[k] == ' ') {
                w++;
                if (w == 30 || w == 70) t.data[k + 1] = 'Z'; /* changes one word each */
            }
        (void)p;
        fti_buf_printf(&jl, "{\"title\":\"near %lu\",\"text\":\"%s.\"}\n", (unsigned long)i,
                       t.data);
        fti_buf_free(&t);
    }
    for (i = 0; i < 2; i++) {
        /* far: every third word of the first 90 changed */
        fti_buf t;
        size_t w = 0, k;
        memset(&t, 0, sizeof t);
        fti_buf_puts(&t, base[i].data);
        for (k = 0; k < t.len; k++)
            if (t.data[k] == ' ' && (++w % 3) == 0 && w < 90) t.data[k + 1] = 'Q';
        fti_buf_printf(&jl, "{\"title\":\"far %lu\",\"text\":\"%s.\"}\n", (unsigned long)i, t.data);
        fti_buf_free(&t);
    }
    fti_buf_printf(&jl, "{\"title\":\"exact\",\"text\":\"%s.\"}\n", base[3].data);
    REQUIRE(fti_test_write_file(fti_test_tmp("docs.jsonl"), jl.data, jl.len) == 0);
    REQUIRE(ingest1(home, fti_test_tmp("docs.jsonl"), NULL, id, NULL) == FTI_OK);
    REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
    dd = fti_json_get(fti_dataset_manifest(ds), "dedup");
    CHECK_EQ_INT(fti_json_get_int(dd, "near_dropped", -1), 4);
    CHECK_EQ_INT(fti_json_get_int(dd, "exact_dropped", -1), 1);
    CHECK_EQ_INT(
        fti_json_get_int(fti_json_get(fti_dataset_manifest(ds), "counts"), "documents", -1), 6);
    /* each group keeps the base document (the first one) */
    {
        const fti_json *g = fti_json_get(dd, "groups"), *e;
        CHECK_EQ_INT(g ? g->len : 0, 4);
        for (e = g ? g->child : NULL; e; e = e->next)
            CHECK(strstr(fti_json_get_str(fti_json_get(e, "kept"), "source", ""), "#line ") !=
                  NULL);
    }
    fti_dataset_close(ds);
    /* threshold > 1 turns near-dup detection off */
    {
        fti_ingest_opts o;
        memset(&o, 0, sizeof o);
        o.dedup_threshold = 2;
        REQUIRE(ingest1(fti_test_tmp("ws2"), fti_test_tmp("docs.jsonl"), &o, id, NULL) == FTI_OK);
        CHECK_EQ_INT(manifest_int(fti_test_tmp("ws2"), id, "dedup", "near_dropped"), 0);
    }
    /* the signature estimate tracks the true Jaccard on one pair */
    {
        fti__st_mh_params mp;
        uint32_t s1[FTI_MINHASH_PERMS], s2[FTI_MINHASH_PERMS];
        fti__st_mh_init(&mp);
        fti__st_minhash(&mp, base[0].data, base[0].len, s1);
        fti__st_minhash(&mp, base[0].data, base[0].len, s2);
        CHECK_NEAR(fti__st_mh_jaccard(s1, s2), 1.0, 0, 0);
        fti__st_minhash(&mp, base[1].data, base[1].len, s2);
        CHECK(fti__st_mh_jaccard(s1, s2) < 0.2);
    }
    for (i = 0; i < 4; i++) fti_buf_free(&base[i]);
    fti_buf_free(&jl);
}


FTI_TEST(store_near_duplicates_keep_newest) {
    /* a group of near copies keeps its newest document, whatever the input order: a draft and
     * the version published later, an edit exported again. Undated copies count as older;
     * equal dates keep the first. The report names the kept one, also when it comes last. */
    static const char *const dates[4][3] = {
        {"2021-03-01", "2022-06-01", "2020-01-01"}, /* group 0: the second is newest */
        {"", "2019-05-05", ""},                       /* 1: the only dated one */
        {"2020-02-02", "2020-02-02", "2020-02-02"},   /* 2: ties: the first */
        {"", "", "2023-01-01T10:00:00Z"}};            /* 3: the last */
    static const int want[4] = {1, 1, 0, 2};
    fti_rng r;
    fti_buf jl;
    size_t g, c;
    char id[65];
    const char *home = fti_test_tmp("ws");
    const fti_json *dd, *gr, *e;
    fti_dataset *ds = NULL;
    fti_rng_seed(&r, 7, 1);
    memset(&jl, 0, sizeof jl);
    for (g = 0; g < 4; g++) {
        fti_buf b;
        memset(&b, 0, sizeof b);
        words(&r, 100, &b);
        for (c = 0; c < 3; c++) {
            size_t k, w = 0;
            for (k = 0; k < b.len; k++) /* copy c changes word 40 + c */
                if (b.data[k] == ' ' && ++w == 40 + c) b.data[k + 1] = 'Y';
            fti_buf_printf(&jl, "{\"title\":\"g%lu c%lu\",%s%s%s\"text\":\"%s.\"}\n",
                           (unsigned long)g, (unsigned long)c, *dates[g][c] ? "\"date\":\"" : "",
                           dates[g][c], *dates[g][c] ? "\"," : "", b.data);
        }
        fti_buf_free(&b);
    }
    REQUIRE(fti_test_write_file(fti_test_tmp("docs.jsonl"), jl.data, jl.len) == 0);
    fti_buf_free(&jl);
    REQUIRE(ingest1(home, fti_test_tmp("docs.jsonl"), NULL, id, NULL) == FTI_OK);
    REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
    dd = fti_json_get(fti_dataset_manifest(ds), "dedup");
    CHECK_EQ_INT(fti_json_get_int(dd, "near_dropped", -1), 8);
    gr = fti_json_get(dd, "groups");
    CHECK_EQ_INT(gr ? gr->len : 0, 4);
    for (e = gr ? gr->child : NULL; e; e = e->next) {
        /* the kept source is "docs.jsonl#line N": line 3g + want[g] + 1 */
        const char *src = fti_json_get_str(fti_json_get(e, "kept"), "source", ""), *l;
        const fti_json *dr = fti_json_get(e, "dropped");
        long line;
        l = strstr(src, "#line ");
        REQUIRE(l != NULL);
        line = strtol(l + 6, NULL, 10);
        g = (size_t)(line - 1) / 3;
        REQUIRE(g < 4);
        CHECK_EQ_INT(line, (long)(3 * g + (size_t)want[g] + 1));
        CHECK_EQ_INT(dr ? dr->len : 0, 2);
    }
    fti_dataset_close(ds);
}
FTI_TEST(store_bm25_hand_checked) {
    /* N = 3 chunks, avg length 3, k1 = 1.2, b = 0.75; scores computed by hand:
     * "apple": idf = ln(1 + 2.5/1.5) = 0.980829; chunk 0 (tf 2, dl 3) = 0.980829*2*2.2/3.2
     * "banana cherry": idf = ln(1.6) = 0.470004 each;
     * chunk 1 (dl 2, norm 0.9) = 2*0.470004*2.2/1.9,
     * chunk 0 (dl 3, norm 1.2) = 0.470004, chunk 2 (dl 4, norm 1.5) = 0.470004*2.2/2.5 */
    fti_chunk_in ch[3];
    fti_doc_meta dm[2];
    fti_bm25 *ix = NULL;
    fti_search_hit h[5];
    size_t n;
    const char *path = fti_test_tmp("ix.bm25");
    ch[0].text = "Apple banana APPLE";
    ch[1].text = "banana, cherry!";
    ch[2].text = "cherry date elder fig";
    ch[0].doc = 0, ch[1].doc = 1, ch[2].doc = 1;
    for (n = 0; n < 3; n++) ch[n].len = strlen(ch[n].text);
    dm[0].doc_id = "d0", dm[0].title = "Fruit", dm[0].source = "a.txt", dm[0].author = NULL,
    dm[0].date = NULL;
    dm[1].doc_id = "d1", dm[1].title = "More", dm[1].source = "b.txt", dm[1].author = "X",
    dm[1].date = "2020";
    REQUIRE(fti_bm25_write(path, ch, 3, dm, 2, NULL) == FTI_OK);
    REQUIRE(fti_bm25_open(&ix, path, NULL) == FTI_OK);
    n = fti_bm25_query(ix, "apple", 5, 5, h);
    REQUIRE(n == 1);
    CHECK_EQ_INT(h[0].chunk, 0);
    CHECK_NEAR(h[0].score, 1.348640, 1e-4, 0);
    CHECK_EQ_STR(h[0].title, "Fruit");
    n = fti_bm25_query(ix, "Banana  cherry", 14, 5, h);
    REQUIRE(n == 3);
    CHECK_EQ_INT(h[0].chunk, 1);
    CHECK_NEAR(h[0].score, 1.088431, 1e-4, 0);
    CHECK_EQ_INT(h[1].chunk, 0);
    CHECK_NEAR(h[1].score, 0.470004, 1e-4, 0);
    CHECK_EQ_INT(h[2].chunk, 2);
    CHECK_NEAR(h[2].score, 0.413603, 1e-4, 0);
    CHECK_EQ_STR(h[2].author, "X");
    CHECK_EQ_INT(h[2].text_len, strlen(ch[2].text));
    CHECK(memcmp(h[2].text, ch[2].text, h[2].text_len) == 0);
    CHECK_EQ_INT(fti_bm25_query(ix, "banana cherry", 13, 1, h), 1);
    CHECK_EQ_INT(h[0].chunk, 1);
    CHECK_EQ_INT(fti_bm25_query(ix, "zebra", 5, 5, h), 0);
    CHECK_EQ_INT(fti_bm25_query(ix, "", 0, 5, h), 0);
    fti_bm25_close(ix);
}

FTI_TEST(store_bm25_hostile_file) {
    /* every truncation and a few corruptions of a valid index are refused, never crash */
    fti_chunk_in ch[2];
    fti_doc_meta dm[1];
    fti_buf img;
    size_t cut;
    fti_bm25 *ix = NULL;
    const char *path = fti_test_tmp("bad.bm25");
    memset(&img, 0, sizeof img);
    ch[0].text = "one two three", ch[0].len = 13, ch[0].doc = 0;
    ch[1].text = "three four", ch[1].len = 10, ch[1].doc = 0;
    dm[0].doc_id = "d", dm[0].title = "t", dm[0].source = "s", dm[0].author = NULL,
    dm[0].date = NULL;
    REQUIRE(fti_bm25_build(&img, ch, 2, dm, 1, NULL) == FTI_OK);
    for (cut = 0; cut < img.len; cut += 7) {
        fti_test_write_file(path, img.data, cut);
        CHECK(fti_bm25_open(&ix, path, NULL) != FTI_OK);
    }
    {
        size_t off[] = {12, 16, 20, 40, 48, 56, 64, 72, 80, 88, 128, 150};
        size_t k;
        for (k = 0; k < sizeof off / sizeof off[0]; k++) {
            fti_buf bad;
            fti_error e;
            memset(&bad, 0, sizeof bad);
            fti_buf_append(&bad, img.data, img.len);
            bad.data[off[k]] ^= 0x7f;
            bad.data[off[k] + 3] ^= 0x40;
            fti_test_write_file(path, bad.data, bad.len);
            if (fti_bm25_open(&ix, path, &e) == FTI_OK) {
                fti_search_hit h[4];
                fti_bm25_query(ix, "three four", 10, 4, h); /* must stay in bounds */
                fti_bm25_close(ix);
            }
            fti_buf_free(&bad);
        }
    }
    fti_buf_free(&img);
}

FTI_TEST(store_shards) {
    uint32_t ids[1001];
    size_t i;
    fti_token_shard s;
    const char *path = fti_test_tmp("t.tok");
    void *data = NULL;
    size_t len = 0;
    fti_error e;
    for (i = 0; i < 1001; i++) ids[i] = (uint32_t)(i * 7919u % 5000u);
    REQUIRE(fti_shard_write(path, ids, 1001, 5000, 4999, NULL) == FTI_OK);
    REQUIRE(fti_shard_open(&s, path, 1, NULL) == FTI_OK);
    CHECK_EQ_INT(s.count, 1001);
    CHECK_EQ_INT(s.width, 2);
    CHECK_EQ_INT(s.eot_id, 4999);
    for (i = 0; i < 1001; i++) CHECK_EQ_INT(fti_shard_at(&s, i), ids[i]);
    fti_shard_close(&s);
    /* wide vocab: 4-byte ids */
    ids[5] = 70000;
    REQUIRE(fti_shard_write(path, ids, 1001, 100000, 1, NULL) == FTI_OK);
    REQUIRE(fti_shard_open(&s, path, 1, NULL) == FTI_OK);
    CHECK_EQ_INT(s.width, 4);
    CHECK_EQ_INT(fti_shard_at(&s, 5), 70000);
    fti_shard_close(&s);
    CHECK(fti_shard_write(path, ids, 1001, 1000, 1, NULL) == FTI_ERR_INVALID);
    /* corruptions: a flipped id byte (checksum), a truncated file, a bad count */
    REQUIRE(fti_file_read(path, 0, &data, &len, NULL) == FTI_OK);
    ((unsigned char *)data)[100] ^= 1;
    fti_test_write_file(path, data, len);
    CHECK(fti_shard_open(&s, path, 1, &e) == FTI_ERR_CHECKSUM);
    fti_test_write_file(path, data, len - 3);
    CHECK(fti_shard_open(&s, path, 0, &e) == FTI_ERR_FORMAT);
    ((unsigned char *)data)[23] = 0xff;
    fti_test_write_file(path, data, len);
    CHECK(fti_shard_open(&s, path, 0, &e) == FTI_ERR_FORMAT);
    fti_test_write_file(path, data, 10);
    CHECK(fti_shard_open(&s, path, 0, &e) == FTI_ERR_FORMAT);
    fti_free(data);
}

static size_t count_words(void *ctx, const char *t, size_t n) {
    size_t i, k = 0;
    (void)ctx;
    for (i = 0; i < n; i++)
        if ((i == 0 || t[i - 1] == ' ' || t[i - 1] == '\n') && t[i] != ' ' && t[i] != '\n') k++;
    return k;
}

FTI_TEST(store_chunking) {
    /* 30 sentences of 5 words; budget 20 words, overlap 5: chunks end at sentence ends, hold at
     * most 20 words, and consecutive chunks share their boundary sentence */
    fti_buf t;
    fti__st_spans sp;
    size_t i;
    memset(&t, 0, sizeof t);
    memset(&sp, 0, sizeof sp);
    for (i = 0; i < 30; i++)
        fti_buf_printf(&t, "Sentence %02lu has five words. ", (unsigned long)i);
    t.len--; /* no trailing blank */
    fti__st_chunk_doc(t.data, t.len, 20, 5, count_words, NULL, &sp);
    REQUIRE(sp.n >= 8);
    for (i = 0; i < sp.n; i++) {
        const char *c = t.data + sp.v[i].off;
        size_t n = sp.v[i].len;
        while (n && c[n - 1] == ' ') n--;
        CHECK(count_words(NULL, c, n) <= 20);
        CHECK(n > 0 && c[n - 1] == '.');
        if (i > 0) CHECK(sp.v[i].off < sp.v[i - 1].off + sp.v[i - 1].len); /* overlap */
        if (i > 0) CHECK(sp.v[i].off > sp.v[i - 1].off);                   /* progress */
    }
    CHECK(sp.v[0].off == 0);
    CHECK(sp.v[sp.n - 1].off + sp.v[sp.n - 1].len == t.len);
    fti_free(sp.v);
    /* one long "sentence" without ends is cut at blanks */
    memset(&sp, 0, sizeof sp);
    t.len = 0;
    for (i = 0; i < 100; i++) fti_buf_puts(&t, "word ");
    fti__st_chunk_doc(t.data, t.len, 10, 2, count_words, NULL, &sp);
    CHECK(sp.n >= 10);
    for (i = 0; i < sp.n; i++) CHECK(count_words(NULL, t.data + sp.v[i].off, sp.v[i].len) <= 11);
    fti_free(sp.v);
    fti_buf_free(&t);
}

/* Progress callback that kills the process at commit step `kill_at`. */
static void kill_at_step(void *user, const fti_ingest_progress *p) {
    long k = *(const long *)user;
    if (strcmp(p->stage, "commit") == 0 && (long)p->done == k) kill(getpid(), SIGKILL);
}

FTI_TEST(store_interrupted_commit) {
    /* a child ingests a changed folder and is killed at every commit step in turn (and once at a
     * random moment); afterwards the store verifies, `latest` names a whole version, and a
     * fresh ingest still works */
    const char *dir = fti_test_tmp("in"), *home = fti_test_tmp("ws");
    char id1[65], latest[65], id_final[65];
    long step;
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    put(dir, "a.txt", "A first file with a few words about the sea and the shore.");
    REQUIRE(ingest1(home, dir, NULL, id1, NULL) == FTI_OK);
    for (step = 1; step <= 6; step++) {
        pid_t pid;
        int status = 0;
        char name[64];
        snprintf(name, sizeof name, "b%ld.txt", step);
        put(dir, name, "Another file, added before the interrupted commit, about rivers.");
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            fti_ingest_opts o;
            char id[65];
            memset(&o, 0, sizeof o);
            o.progress = kill_at_step;
            o.progress_user = &step;
            ingest1(home, dir, &o, id, NULL);
            _exit(0);
        }
        waitpid(pid, &status, 0);
        CHECK(fti_store_verify(home, NULL, NULL, NULL) == FTI_OK);
        CHECK(fti_store_resolve(home, "latest", latest, NULL) == FTI_OK);
        {
            fti_dataset *ds = NULL;
            CHECK(fti_dataset_open(&ds, home, latest, NULL) == FTI_OK);
            fti_dataset_close(ds);
        }
    }
    {
        /* a kill at a random moment of a whole run */
        pid_t pid;
        int status = 0;
        put(dir, "c.txt", "One more file to make the last run differ from the others.");
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            char id[65];
            ingest1(home, dir, NULL, id, NULL);
            _exit(0);
        }
        {
            struct timespec ts;
            ts.tv_sec = 0;
            ts.tv_nsec = 2000000;
            nanosleep(&ts, NULL);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        CHECK(fti_store_verify(home, NULL, NULL, NULL) == FTI_OK);
    }
    REQUIRE(ingest1(home, dir, NULL, id_final, NULL) == FTI_OK);
    CHECK(fti_store_verify(home, NULL, NULL, NULL) == FTI_OK);
    CHECK(fti_store_resolve(home, "latest", latest, NULL) == FTI_OK &&
          strcmp(latest, id_final) == 0);
    /* a corrupted object makes verify fail */
    {
        fti_dataset *ds = NULL;
        REQUIRE(fti_dataset_open(&ds, home, NULL, NULL) == FTI_OK);
        fti_test_write_file(fti_dataset_docs_path(ds), "x", 1);
        fti_dataset_close(ds);
        CHECK(fti_store_verify(home, NULL, NULL, NULL) == FTI_ERR_CHECKSUM);
    }
}

FTI_TEST(store_workspace) {
    char *h;
    h = fti_workspace_resolve("/x/y");
    CHECK_EQ_STR(h, "/x/y");
    fti_free(h);
    setenv("FTI_HOME", "/from/env", 1);
    h = fti_workspace_resolve(NULL);
    CHECK_EQ_STR(h, "/from/env");
    fti_free(h);
    unsetenv("FTI_HOME");
    h = fti_workspace_resolve("");
    CHECK_EQ_STR(h, "./twin");
    fti_free(h);
    CHECK(fti_workspace_init(fti_test_tmp("w"), NULL) == FTI_OK);
    CHECK(fti_path_is_dir(fti_test_tmp("w/store/objects")));
    CHECK(fti_path_is_dir(fti_test_tmp("w/models")));
}

FTI_TEST(store_tokens) {
    /* with a trained tokenizer: the shards hold exactly the template-encoded documents (train
     * docs in order, then val), the statistics match, and the tokenizer decodes them back */
    const char *home = fti_test_tmp("ws");
    const char *paths[1];
    fti_ingest_opts o;
    char id[65];
    fti_dataset *ds = NULL;
    fti_tokenizer *tok = NULL;
    const fti_dataset_stats *st;
    fti_json_doc *jd = NULL;
    void *docs = NULL;
    size_t docs_len = 0, pos = 0, k;
    fti_tokens want[2];
    uint64_t sum = 0;
    memset(&o, 0, sizeof o);
    memset(want, 0, sizeof want);
    o.vocab_size = 400;
    o.n_threads = 2;
    o.val_percent = 30;
    paths[0] = STORE_DATA "/kinds";
    REQUIRE(fti_store_ingest(home, paths, 1, &o, id, NULL, NULL) == FTI_OK);
    REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
    REQUIRE(fti_dataset_shard(ds, FTI_SPLIT_TRAIN) && fti_dataset_shard(ds, FTI_SPLIT_VAL));
    REQUIRE(fti_dataset_tokenizer_path(ds) != NULL);
    REQUIRE(fti_tokenizer_load(fti_dataset_tokenizer_path(ds), NULL, &tok, NULL) == FTI_OK);
    {
        char hex[65];
        fti_tokenizer_id_hex(tok, hex);
        CHECK_EQ_STR(hex, fti_dataset_tokenizer_sha256(ds));
    }
    REQUIRE(fti_file_read(fti_dataset_docs_path(ds), 0, &docs, &docs_len, NULL) == FTI_OK);
    while (pos < docs_len) {
        const char *s = (const char *)docs + pos,
                   *e = (const char *)memchr(s, '\n', docs_len - pos);
        size_t len = e ? (size_t)(e - s) : docs_len - pos;
        const fti_json *d;
        const char *title, *text;
        REQUIRE(fti_json_parse(s, len, NULL, &jd, NULL, NULL) == FTI_OK);
        d = fti_json_root(jd);
        title = fti_json_get_str(d, "title", "");
        text = fti_json_get_str(d, "text", "");
        k = strcmp(fti_json_get_str(d, "split", ""), "val") == 0;
        CHECK(fti_template_encode(tok, title, strlen(title), text, fti_json_get(d, "text")->len, 0,
                                  &want[k]) == FTI_OK);
        fti_json_free(jd);
        pos += len + 1;
    }
    for (k = 0; k < 2; k++) {
        const fti_token_shard *sh = fti_dataset_shard(ds, k ? FTI_SPLIT_VAL : FTI_SPLIT_TRAIN);
        uint64_t i, same = sh->count == want[k].len;
        for (i = 0; same && i < sh->count; i++) same = fti_shard_at(sh, i) == want[k].ids[i];
        CHECK(same);
        CHECK(sh->count > 0);
        CHECK_EQ_INT(sh->eot_id, fti_tokenizer_eot_id(tok));
        CHECK_EQ_INT(sh->vocab_size, fti_tokenizer_vocab_size(tok));
    }
    st = fti_dataset_get_stats(ds);
    CHECK_EQ_INT(st->n_train_tokens, want[0].len);
    CHECK_EQ_INT(st->n_val_tokens, want[1].len);
    CHECK_EQ_INT(st->n_docs, 12);
    REQUIRE(st->token_counts != NULL);
    for (k = 0; k < st->vocab_size; k++) sum += st->token_counts[k];
    CHECK_EQ_INT(sum, st->n_train_tokens);
    {
        /* decode the first train document back */
        fti_buf b;
        const fti_token_shard *sh = fti_dataset_shard(ds, FTI_SPLIT_TRAIN);
        memset(&b, 0, sizeof b);
        for (k = 0; k < sh->count; k++) {
            uint32_t t = fti_shard_at(sh, k);
            CHECK(fti_tokenizer_decode(tok, &t, 1, &b) == FTI_OK);
            if (t == sh->eot_id) break;
        }
        CHECK(b.len > 30 && strncmp(b.data, "<|title|>", 9) == 0);
        CHECK(strstr(b.data, "<|body|>") && strstr(b.data, "<|endoftext|>"));
        fti_buf_free(&b);
    }
    /* search works on the version */
    {
        fti_search_hit h[3];
        size_t n = fti_dataset_search(ds, "sandwiches map", 14, 3, h);
        CHECK(n >= 1);
        if (n) CHECK(strstr(h[0].source, "archive.mbox#msg 2") != NULL);
    }
    CHECK(fti_store_verify(home, id, NULL, NULL) == FTI_OK);
    fti_tokens_free(&want[0]);
    fti_tokens_free(&want[1]);
    fti_tokenizer_free(tok);
    fti_free(docs);
    fti_dataset_close(ds);
}

FTI_TEST(store_sha256_fast_path) {
    /* the store's SHA-256 (SHA-NI when the CPU has it) equals the base part's on every length
     * around the block and padding boundaries and on a large random buffer */
    unsigned char buf[5000], a[32], b[32];
    size_t n;
    fti_rng r;
    fti_rng_seed(&r, 7, 7);
    for (n = 0; n < sizeof buf; n++) buf[n] = (unsigned char)fti_rng_u32(&r);
    for (n = 0; n < 300; n++) {
        fti__st_sha256(buf, n, a);
        fti_sha256_buf(buf, n, b);
        CHECK(memcmp(a, b, 32) == 0);
    }
    for (n = 4000; n < sizeof buf; n += 37) {
        fti__st_sha256(buf, n, a);
        fti_sha256_buf(buf, n, b);
        CHECK(memcmp(a, b, 32) == 0);
    }
    fti__st_sha256("abc", 3, a);
    {
        char hex[65];
        fti_sha256_hex(a, hex);
        CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}

/* Runs a shell command; returns its exit status (-1 if it did not exit). */
static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

FTI_TEST(store_cli) {
    /* the program's interface: exit 0 and the version id as the last word of ingest's output,
     * the same id again on unchanged inputs, verify's exit status (skipped without the program) */
    char cmd[2048], *home, *out;
    void *data = NULL;
    size_t len = 0, e;
    char id1[65], id2[65];
    if (!fti_path_exists("build/fti-feature")) {
        fprintf(stderr, "    (build/fti-feature not built: skipped)\n");
        return;
    }
    home = fti_strdup(fti_test_tmp("ws"));
    out = fti_strdup(fti_test_tmp("out.txt"));
    snprintf(cmd, sizeof cmd,
             "build/fti-feature --home '%s' ingest %s/kinds --vocab 300 > '%s' 2>/dev/null", home,
             STORE_DATA, out);
    REQUIRE(sh(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &data, &len, NULL) == FTI_OK);
    while (len && (((char *)data)[len - 1] == '\n' || ((char *)data)[len - 1] == ' ')) len--;
    e = len;
    while (e && ((char *)data)[e - 1] != ' ' && ((char *)data)[e - 1] != '\n') e--;
    REQUIRE(len - e == 64);
    memcpy(id1, (char *)data + e, 64);
    id1[64] = 0;
    fti_free(data);
    snprintf(cmd, sizeof cmd,
             "build/fti-feature --home '%s' ingest %s/kinds --vocab 300 --quiet > '%s'", home,
             STORE_DATA, out);
    REQUIRE(sh(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &data, &len, NULL) == FTI_OK);
    CHECK(len >= 64);
    memcpy(id2, data, 64);
    id2[64] = 0;
    fti_free(data);
    CHECK_EQ_STR(id1, id2);
    snprintf(cmd, sizeof cmd, "build/fti-feature --home '%s' verify > /dev/null", home);
    CHECK(sh(cmd) == 0);
    snprintf(cmd, sizeof cmd, "build/fti-feature --home '%s' search 'sandwiches' -k 1 > /dev/null",
             home);
    CHECK(sh(cmd) == 0);
    snprintf(cmd, sizeof cmd, "build/fti-feature --help > /dev/null");
    CHECK(sh(cmd) == 0);
    {
        /* corrupt one object: verify must fail */
        fti_dataset *ds = NULL;
        REQUIRE(fti_dataset_open(&ds, home, NULL, NULL) == FTI_OK);
        fti_test_write_file(fti_dataset_tokenizer_path(ds), "junk", 4);
        fti_dataset_close(ds);
        snprintf(cmd, sizeof cmd, "build/fti-feature --home '%s' verify > /dev/null 2>&1", home);
        CHECK(sh(cmd) != 0);
    }
    fti_free(home);
    fti_free(out);
}

FTI_TEST(store_parent_tokenizer) {
    /* --tokenizer parent keeps the tokenizer of `latest` across an incremental ingest */
    const char *dir = fti_test_tmp("in"), *home = fti_test_tmp("ws");
    const char *paths[1];
    fti_ingest_opts o;
    char id1[65], id2[65], tok1[65];
    fti_dataset *ds = NULL;
    memset(&o, 0, sizeof o);
    o.vocab_size = 300;
    paths[0] = dir;
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    put(dir, "a.txt", "The first file, about apples and orchards in autumn and winter.");
    put(dir, "b.txt", "The second file, about boats on a windy lake in the spring.");
    REQUIRE(fti_store_ingest(home, paths, 1, &o, id1, NULL, NULL) == FTI_OK);
    REQUIRE(fti_dataset_open(&ds, home, id1, NULL) == FTI_OK);
    snprintf(tok1, sizeof tok1, "%s", fti_dataset_tokenizer_sha256(ds));
    fti_dataset_close(ds);
    put(dir, "c.txt", "A third file with quite different words: zebras, quartz, jukebox, fjord.");
    o.tokenizer = "parent";
    REQUIRE(fti_store_ingest(home, paths, 1, &o, id2, NULL, NULL) == FTI_OK);
    CHECK(strcmp(id1, id2) != 0);
    REQUIRE(fti_dataset_open(&ds, home, id2, NULL) == FTI_OK);
    CHECK_EQ_STR(fti_dataset_tokenizer_sha256(ds), tok1);
    CHECK(fti_json_get(fti_dataset_manifest(ds), "tokenizer") != NULL);
    fti_dataset_close(ds);
    CHECK(fti_store_verify(home, NULL, NULL, NULL) == FTI_OK);
}

FTI_TEST(store_linear_time_hostile) {
    /* inputs built to make naive scans quadratic: a 1 MB line of '[' (markdown links), of
     * "a.a.a." and "1 1 1 " (redaction), of "<a" (unclosed tags), of stray <nav> tags and
     * author marks; each must take well under a second (quadratic would take hours) */
    static const char *const pats[] = {"[",  "a.",   "1 ",    "<a",     "=?",      "&#",
                                       "> ", "[a](", "<http", "=?a?b?", "wrote:\n",
                                       "[[",  "![[a", "[^",    "<!--",   "<a ",     "&amp",
                                       "On a\n", "From: a\n", "__________\n", "<nav>",
                                       "<footer></footer-a>", "<b class=author><b>",
                                       "-----BEGIN PGP MESSAGE-----\n",
                                       "-----BEGIN PGP SIGNED MESSAGE-----\n- \n",
                                       "<h1>", "<a href=/>", "<header><h1>", "A | ",
                                       "by y, \n", "<ab", "<h1x"};
    size_t k, n = (size_t)1 << 20;
    for (k = 0; k < sizeof pats / sizeof pats[0]; k++) {
        fti_buf in, out, t;
        size_t i, pl = strlen(pats[k]);
        clock_t c0;
        double secs;
        memset(&in, 0, sizeof in);
        memset(&out, 0, sizeof out);
        memset(&t, 0, sizeof t);
        for (i = 0; i < n / pl; i++) fti_buf_append(&in, pats[k], pl);
        c0 = clock();
        fti_markdown_to_text(in.data, in.len, &t, NULL);
        fti_clean_text(in.data, in.len, FTI_CLEAN_REDACT_ALL, &out);
        t.len = 0;
        fti_html_to_text(in.data, in.len, &t, &out);
        t.len = 0;
        fti__st_rfc2047(in.data, in.len, &t);
        t.len = 0;
        fti__st_mail_strip(in.data, in.len, &t);
        {
            char *date = NULL, *author = NULL;
            char *site = NULL, bdate[32];
            fti__st_html_meta(in.data, in.len, &date, &author, &site);
            fti_free(date);
            fti_free(author);
            fti_free(site);
            date = fti__st_title_cut(fti_strdup("A | B - C :: D"), "x", "y", in.data, in.len);
            fti_free(date);
            fti__st_page_start(in.data, in.len, "A", "y", bdate);
        }
        t.len = 0;
        fti__st_unwrap(in.data, in.len, 0, 0, &t);
        t.len = 0;
        fti__st_unwrap(in.data, in.len, 1, 1, &t);
        /* CPU time, not wall time: a loaded machine or qemu must not fail it; linear code
         * takes well under a second natively, quadratic would take hours */
        secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
        if (secs >= 20) fprintf(stderr, "    pattern \"%s\": %.2f CPU s\n", pats[k], secs);
        CHECK(secs < 20);
        fti_buf_free(&in);
        fti_buf_free(&out);
        fti_buf_free(&t);
    }
}

/* One run of ingest over dir with an injected I/O fault (in a child process); returns the
 * child's exit status: 0 ingest succeeded, 1 ingest failed cleanly, 77 crashed at the fault. */
static int ingest_with_fault(const char *home, const char *dir, int crash, long at) {
    pid_t pid;
    int status = 0;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        fti_ingest_opts o;
        fti_error err;
        char id[65];
        const char *paths[1];
        memset(&o, 0, sizeof o);
        o.vocab_size = 300;
        o.n_threads = 1;
        paths[0] = dir;
        if (crash)
            fti__io_crash_set(FTI__IO_WRITE | FTI__IO_FSYNC | FTI__IO_RENAME, at);
        else
            fti__io_fault_set(FTI__IO_WRITE | FTI__IO_FSYNC | FTI__IO_RENAME, at, ENOSPC, 1, 0);
        _exit(fti_store_ingest(home, paths, 1, &o, id, NULL, &err) == FTI_OK ? 0 : 1);
    }
    while (waitpid(pid, &status, 0) < 0) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

FTI_TEST(store_full_disk_and_crash_at_every_io_step) {
    /* with a tokenizer (7 objects, a manifest and a ref), fail every write/fsync/rename in turn
     * with ENOSPC (persistent: the disk stays full), then crash just before each of them; after
     * every run the store verifies and `latest` names a whole version (the old or the new one) */
    const char *dir = fti_test_tmp("in"), *home = fti_test_tmp("ws");
    char id1[65], latest[65];
    long k;
    int crash, saw_fail = 0, saw_crash = 0;
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    put(dir, "a.txt", "A first file with a few words about the sea, the shore and the gulls.");
    put(dir, "b.jsonl",
        "{\"title\":\"b1\",\"text\":\"Record one, about mountains and snow.\"}\n"
        "{\"title\":\"b2\",\"text\":\"Record two, about rivers and bridges.\"}\n");
    REQUIRE(ingest_with_fault(home, dir, 0, 1000000) == 0);
    REQUIRE(fti_store_resolve(home, "latest", id1, NULL) == FTI_OK);
    for (crash = 0; crash <= 1; crash++) {
        for (k = 1; k < 200; k++) {
            int st;
            char name[64];
            fti_buf text;
            fti_rng rng;
            /* a new document (not a duplicate of an earlier one), so every object changes */
            memset(&text, 0, sizeof text);
            fti_rng_seed(&rng, (uint64_t)(crash * 1000 + k), 3);
            words(&rng, 40, &text);
            snprintf(name, sizeof name, "c%d_%ld.txt", crash, k);
            put(dir, name, text.data);
            fti_buf_free(&text);
            st = ingest_with_fault(home, dir, crash, k);
            CHECK(st == 0 || st == 1 || st == 77);
            if (st == 1) saw_fail = 1;
            if (st == 77) saw_crash = 1;
            CHECK(fti_store_verify(home, NULL, NULL, NULL) == FTI_OK);
            CHECK(fti_store_resolve(home, "latest", latest, NULL) == FTI_OK);
            {
                fti_dataset *ds = NULL;
                CHECK(fti_dataset_open(&ds, home, latest, NULL) == FTI_OK);
                fti_dataset_close(ds);
            }
            if (st == 0) break; /* k is past the last I/O step of an ingest */
        }
        CHECK(k < 200 && k > 30);
    }
    CHECK(saw_fail && saw_crash);
}

/* --- sharded ingest ------------------------------------------------------------------------ */

/* 1 when versions a (in home ha) and b (in hb) have the same id and the same objects. */
static int same_version(const char *ha, const char *a, const char *hb, const char *b) {
    fti_dataset *x = NULL, *y = NULL;
    int ok = strcmp(a, b) == 0;
    static const char *const objs[] = {"records", "docs", "tokenizer", "train",
                                       "val",     "token_counts", "index"};
    size_t i;
    if (fti_dataset_open(&x, ha, a, NULL) != FTI_OK || fti_dataset_open(&y, hb, b, NULL) != FTI_OK)
        ok = 0;
    for (i = 0; ok && i < sizeof objs / sizeof objs[0]; i++) {
        const fti_json *fx = fti_json_get(fti_json_get(fti_dataset_manifest(x), "files"), objs[i]);
        const fti_json *fy = fti_json_get(fti_json_get(fti_dataset_manifest(y), "files"), objs[i]);
        const char *sx = fti_json_get_str(fx, "sha256", NULL),
                   *sy = fti_json_get_str(fy, "sha256", NULL);
        if (!sx || !sy || strcmp(sx, sy) != 0) {
            fprintf(stderr, "    object %s differs: %s vs %s\n", objs[i], sx ? sx : "-",
                    sy ? sy : "-");
            ok = 0;
        }
    }
    if (ok) {
        const fti_json *cx = fti_json_get(fti_dataset_manifest(x), "counts");
        const fti_json *cy = fti_json_get(fti_dataset_manifest(y), "counts");
        static const char *const keys[] = {"files", "records", "documents", "rejected",
                                           "duplicates", "chunks"};
        for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (fti_json_get_int(cx, keys[i], -1) != fti_json_get_int(cy, keys[i], -2)) ok = 0;
    }
    fti_dataset_close(x);
    fti_dataset_close(y);
    return ok;
}

FTI_TEST(store_sharded_ingest_equals_single) {
    /* N = 3 shards of the kinds folder plus near-duplicates spread over several files: merging
     * the partials gives the version one ingest of the same inputs gives (same id, same objects:
     * dedupe across shards, the split, the tokenizer on the union, shards and index) */
    const char *dir = fti_test_tmp("nd"), *h1 = fti_test_tmp("ws1"), *h2 = fti_test_tmp("ws2");
    const char *paths[2];
    char id1[65], id2[65], name[32];
    fti_ingest_opts o;
    fti_buf part, base;
    fti_error err;
    fti_rng rng;
    unsigned i;
    int k;
    memset(&o, 0, sizeof o);
    memset(&part, 0, sizeof part);
    memset(&base, 0, sizeof base);
    o.vocab_size = 300;
    o.n_threads = 2;
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    fti_rng_seed(&rng, 42, 1);
    words(&rng, 300, &base);
    for (k = 0; k < 8; k++) {
        /* the same long text with one word changed per file: near-duplicates across shards */
        fti_buf t;
        memset(&t, 0, sizeof t);
        fti_buf_append(&t, base.data, base.len);
        memcpy(t.data + 7 * (size_t)k, "ZEBRA", 5);
        snprintf(name, sizeof name, "n%d.txt", k);
        put(dir, name, t.data);
        fti_buf_free(&t);
    }
    put(dir, "same1.txt", "An exact duplicate, about lighthouses in fog and their keepers.");
    put(dir, "same2.txt", "An exact duplicate, about lighthouses in fog and their keepers.");
    paths[0] = STORE_DATA "/kinds";
    paths[1] = dir;
    REQUIRE(fti_store_ingest(h1, paths, 2, &o, id1, NULL, &err) == FTI_OK);
    CHECK(manifest_int(h1, id1, "dedup", "near_dropped") >= 1);
    CHECK(manifest_int(h1, id1, "dedup", "exact_dropped") >= 1);
    /* two of three shards: merging must fail, naming the missing one */
    for (i = 0; i < 2; i++)
        REQUIRE(fti_store_ingest_partial(h2, paths, 2, &o, i, 3, &part, &err) == FTI_OK);
    CHECK(fti_store_merge(h2, NULL, 0, &o, id2, &err) == FTI_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "2 of 3") != NULL);
    REQUIRE(fti_store_ingest_partial(h2, paths, 2, &o, 2, 3, &part, &err) == FTI_OK);
    /* other record options than the shards': refused */
    {
        fti_ingest_opts o2 = o;
        o2.min_chars = 30;
        CHECK(fti_store_merge(h2, NULL, 0, &o2, id2, &err) == FTI_ERR_INVALID);
    }
    /* a truncated partial is an error, never a crash */
    {
        const char *bad = fti_test_tmp("bad.part");
        void *data = NULL;
        size_t len = 0;
        const char *one[1];
        char *first = part.data, *nl;
        REQUIRE(first != NULL);
        /* part holds the three paths one after another: take the first */
        nl = strstr(first + 1, ".part");
        REQUIRE(nl != NULL);
        nl[5] = 0;
        REQUIRE(fti_file_read(first, 0, &data, &len, NULL) == FTI_OK);
        fti_test_write_file(bad, data, len > 100 ? len - 37 : len / 2);
        fti_free(data);
        one[0] = bad;
        CHECK(fti_store_merge(h2, one, 1, &o, id2, &err) != FTI_OK);
    }
    REQUIRE(fti_store_merge(h2, NULL, 0, &o, id2, &err) == FTI_OK);
    CHECK(same_version(h1, id1, h2, id2));
    CHECK(fti_store_verify(h2, NULL, NULL, NULL) == FTI_OK);
    /* the partials were consumed */
    CHECK(fti_store_merge(h2, NULL, 0, &o, id2, &err) == FTI_ERR_NOT_FOUND);
    /* N = 1 is a whole ingest in two steps */
    REQUIRE(fti_store_ingest_partial(h2, paths, 2, &o, 0, 1, NULL, &err) == FTI_OK);
    REQUIRE(fti_store_merge(h2, NULL, 0, &o, id2, &err) == FTI_OK);
    CHECK_EQ_STR(id1, id2);
    CHECK(fti_store_ingest_partial(h2, paths, 2, &o, 3, 3, NULL, &err) == FTI_ERR_INVALID);
    fti_buf_free(&part);
    fti_buf_free(&base);
}

FTI_TEST(store_clean_redaction_idempotent) {
    /* redacting redacted text changes nothing, also when an address is glued to a number (the
     * fuzzer's phone-before-email case) and on random mixes of numbers, addresses and URLs */
    static const char *const pieces[] = {"+1 ", "555", " ", "123", "4", "a@b.com", "x", "@", ".",
                                         "www.example.com/p", "(", ")", "-", "\n", "9", "_",
                                         "http://h.io/x", "mail.me@ex-ample.org", "+", "0"};
    fti_buf a, b, s;
    fti_rng rng;
    int k, bad = 0;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&s, 0, sizeof s);
    CHECK(clean_is("+1 555 123 4Ca@g.com or org", FTI_CLEAN_REDACT_ALL, "[PHONE] [EMAIL] or org"));
    CHECK(clean_is("call 555 123 4567 now", FTI_CLEAN_REDACT_ALL, "call [PHONE] now"));
    CHECK(clean_is("id 555 123 4567x", FTI_CLEAN_REDACT_ALL, "id 555 123 4567x"));
    fti_rng_seed(&rng, 7, 1);
    for (k = 0; k < 3000 && bad < 3; k++) {
        int m = 1 + (int)fti_rng_below(&rng, 12), q;
        s.len = a.len = b.len = 0;
        for (q = 0; q < m; q++)
            fti_buf_puts(&s, pieces[fti_rng_below(&rng, sizeof pieces / sizeof pieces[0])]);
        fti_clean_text(s.data, s.len, FTI_CLEAN_REDACT_ALL, &a);
        fti_clean_text(a.data ? a.data : "", a.len, FTI_CLEAN_REDACT_ALL, &b);
        if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0)) {
            fprintf(stderr, "    not idempotent: \"%.*s\" -> \"%.*s\" -> \"%.*s\"\n", (int)s.len,
                    s.data, (int)a.len, a.data, (int)b.len, b.data);
            bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    fti_buf_free(&a);
    fti_buf_free(&b);
    fti_buf_free(&s);
}

/* A records pack shorter than its documents say: the read-back error names the short file, not
 * whatever errno an earlier call left (it used to print a stale strerror). */
FTI_TEST(store_read_back_short_file) {
#ifndef FTI_NO_STORE
    const char *path = fti_test_tmp("short.recs");
    fti__st_run *r = (fti__st_run *)calloc(1, sizeof *r);
    fti__st_doc d[2], *dp[2];
    fti_buf buf;
    fti_error err;
    size_t n_dup = 0;
    REQUIRE(r != NULL);
    REQUIRE(fti_test_write_file(path, "0123456789", 10) == 0);
    r->recs_fd = open(path, O_RDONLY);
    REQUIRE(r->recs_fd >= 0);
    r->recs.af.tmp_path = (char *)path;
    memset(d, 0, sizeof d);
    memset(&buf, 0, sizeof buf);
    memset(&err, 0, sizeof err);
    d[0].text_len = d[1].text_len = 8;
    d[0].text_off = 0;
    d[1].text_off = 6; /* ends 4 bytes past the end */
    d[0].h_text = d[1].h_text = 42;
    dp[0] = &d[1];
    dp[1] = &d[0];
    /* a read back of a batch */
    errno = ENOENT;
    CHECK(fti__st_batch_load(r, dp, 1, &buf, &err) == FTI_ERR_IO);
    CHECK(strstr(err.msg, "shorter than expected") != NULL && strstr(err.msg, path) != NULL);
    CHECK(strstr(err.msg, strerror(ENOENT)) == NULL);
    /* the exact-duplicate comparison keeps what the read met through its cleanup */
    errno = ENOENT;
    CHECK(fti__st_exact_dups(r, dp, 2, &n_dup) == FTI_ERR_IO);
    CHECK_EQ_STR(fti__st_read_error(errno), "the file is shorter than expected");
    /* a real system error is still named */
    close(r->recs_fd);
    r->recs_fd = -1;
    CHECK(fti__st_batch_load(r, dp, 1, &buf, &err) == FTI_ERR_IO);
    CHECK(strstr(err.msg, strerror(EBADF)) != NULL);
    fti_buf_free(&buf);
    free(r);
#endif
}

/* Writes a copy of partial src to dst with the u32 at off set to v. */
static void store_part_patch(const char *src, const char *dst, size_t off, uint32_t v) {
    void *data = NULL;
    size_t len = 0;
    REQUIRE(fti_file_read(src, 0, &data, &len, NULL) == FTI_OK && len > off + 4);
    fti_store_u32((unsigned char *)data + off, v);
    REQUIRE(fti_test_write_file(dst, data, len) == 0);
    fti_free(data);
}

FTI_TEST(store_merge_hostile_partials) {
    /* a merge given a damaged or forged partial fails with a message, frees what it allocated,
     * and never sizes an allocation from a header's claims alone (a 96-byte file claiming 5e7
     * files used to make it touch 12 GB), then merges the real partials */
    const char *dir = fti_test_tmp("in"), *home = fti_test_tmp("ws");
    const char *forged = fti_test_tmp("forged.part"), *junk = fti_test_tmp("junk.part");
    const char *two[2];
    fti_buf p0, p1;
    fti_ingest_opts o;
    fti_error err;
    char id[65];
    long live0;
    size_t k;
    static const struct {
        size_t off;
        uint32_t v;
        const char *msg;
    } forge[] = {{20, 50000000u, "claims 50000000 files"}, /* n_files */
                 {16, 0xFFFFFFFFu, "bad partial header"},   /* n_shards */
                 {24, 40000u, "bad partial header"}};       /* n_mine */
    memset(&o, 0, sizeof o);
    memset(&p0, 0, sizeof p0);
    memset(&p1, 0, sizeof p1);
    o.no_tokenizer = 1;
    o.n_threads = 1;
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    put(dir, "a.txt", "The first file, about the sea and the ships that cross it in winter.");
    put(dir, "b.txt", "The second file, about the mountains and the snow on their slopes.");
    put(dir, "c.txt", "The third file, about a city at night and the lights of its bridges.");
    two[0] = dir;
    REQUIRE(fti_store_ingest_partial(home, two, 1, &o, 0, 2, &p0, &err) == FTI_OK);
    REQUIRE(fti_store_ingest_partial(home, two, 1, &o, 1, 2, &p1, &err) == FTI_OK);
    REQUIRE(p0.data && p1.data);
    REQUIRE(fti_test_write_file(junk, "FTIPART", 7) == 0);
    two[0] = p0.data;
    /* a second partial that is not one, or is missing: the first one's tables are freed */
    live0 = fti_test_alloc_live;
    two[1] = junk;
    CHECK(fti_store_merge(home, two, 2, &o, id, &err) == FTI_ERR_FORMAT);
    CHECK(strstr(err.msg, "not an fti partial") != NULL);
    CHECK_EQ_INT(fti_test_alloc_live, live0);
    two[1] = fti_test_tmp("missing.part");
    CHECK(fti_store_merge(home, two, 2, &o, id, &err) == FTI_ERR_NOT_FOUND);
    CHECK_EQ_INT(fti_test_alloc_live, live0);
    /* forged counts, first or second */
    for (k = 0; k < sizeof forge / sizeof forge[0]; k++) {
        store_part_patch(p1.data, forged, forge[k].off, forge[k].v);
        two[1] = forged;
        CHECK(fti_store_merge(home, two, 2, &o, id, &err) == FTI_ERR_FORMAT);
        CHECK(strstr(err.msg, forge[k].msg) != NULL);
        two[0] = forged;
        two[1] = p0.data;
        CHECK(fti_store_merge(home, two, 2, &o, id, &err) == FTI_ERR_FORMAT);
        CHECK(strstr(err.msg, forge[k].msg) != NULL);
        two[0] = p0.data;
        CHECK_EQ_INT(fti_test_alloc_live, live0);
    }
    /* the real ones still merge */
    two[1] = p1.data;
    CHECK_OK(fti_store_merge(home, two, 2, &o, id, &err));
    CHECK(fti_store_verify(home, id, NULL, NULL) == FTI_OK);
    fti_buf_free(&p0);
    fti_buf_free(&p1);
}

/* fti_store_gc in a workspace whose own path has "/store/tmp/" in it: only HOME/store/tmp is
 * temporary; the manifests and refs of the versions kept stay, and verify passes. */
FTI_TEST(store_gc_home_path_has_store_tmp) {
    const char *dir = fti_test_tmp("in"), *home = fti_test_tmp("backup/store/tmp/ws");
    char id[65], latest[65];
    fti_store_gc_result res;
    fti_error err;
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    put(dir, "a.txt", "A first file with a few words about the sea and the shore.");
    REQUIRE(ingest1(home, dir, NULL, id, NULL) == FTI_OK);
    CHECK_OK(fti_store_gc(home, NULL, &res, NULL, &err));
    CHECK_EQ_INT(res.versions_kept, 1);
    CHECK_EQ_INT(res.temp_removed, 0);
    CHECK_OK(fti_store_resolve(home, "latest", latest, &err));
    CHECK_EQ_STR(latest, id);
    CHECK_OK(fti_store_verify(home, NULL, NULL, &err));
}

/* A dry run only reads: it does not hold the store lock, so an ingest started meanwhile (say,
 * by an update while `fti-twin status` estimates what gc would free) is not refused. */
FTI_TEST(store_gc_dry_run_takes_no_lock) {
    const char *dir = fti_test_tmp("in"), *home = fti_test_tmp("ws");
    char id[65];
    fti_store_gc_opts o;
    fti_store_gc_result res;
    fti_error err;
    int fd;
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    put(dir, "a.txt", "A first file with a few words about the sea and the shore.");
    REQUIRE(ingest1(home, dir, NULL, id, NULL) == FTI_OK);
    /* an exclusive holder (as an ingest is): a dry run still estimates, a real gc is refused */
    fd = open(fti_test_tmp("ws/store/lock"), O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(flock(fd, LOCK_EX) == 0);
    memset(&o, 0, sizeof o);
    o.dry_run = 1;
    CHECK_OK(fti_store_gc(home, &o, &res, NULL, &err));
    CHECK_EQ_INT(res.versions_kept, 1);
    CHECK(fti_store_gc(home, NULL, &res, NULL, &err) == FTI_ERR_BUSY);
    close(fd);
}

/* An incremental ingest reuses the `latest` version's records only when their bytes are the
 * ones its manifest names: a records object damaged on disk (a flipped byte) was copied into
 * the new version, which then verified (its manifest names the damaged bytes' hash) though its
 * text differed from a clean run's. Now its files are processed again. */
FTI_TEST(store_damaged_records_not_reused) {
    const char *dir = fti_test_tmp("in"), *home = fti_test_tmp("ws"), *clean = fti_test_tmp("ok");
    char id[65], id2[65], idc[65], rec[4096];
    fti_json_doc *jd = NULL;
    fti_buf a, b;
    size_t reused = 9, len = 0, k;
    void *data = NULL;
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    put(dir, "a.txt", "A first file with a few words about the sea and the shore.");
    REQUIRE(ingest1(home, dir, NULL, id, NULL) == FTI_OK);
    /* flip a byte of the cleaned text inside the records object */
    snprintf(rec, sizeof rec, "%s/store/versions/%s.json", home, id);
    REQUIRE(fti_file_read(rec, 0, &data, &len, NULL) == FTI_OK);
    REQUIRE(fti_json_parse((const char *)data, len, NULL, &jd, NULL, NULL) == FTI_OK);
    fti_free(data);
    {
        const char *hex = fti_json_get_str(
            fti_json_get(fti_json_get(fti_json_root(jd), "files"), "records"), "sha256", "");
        REQUIRE(strlen(hex) == 64);
        snprintf(rec, sizeof rec, "%s/store/objects/%.2s/%s", home, hex, hex);
    }
    fti_json_free(jd);
    REQUIRE(fti_file_read(rec, 0, &data, &len, NULL) == FTI_OK);
    for (k = 16; k + 3 <= len && memcmp((char *)data + k, "sea", 3) != 0; k++) {
    }
    REQUIRE(k + 3 <= len);
    ((char *)data)[k] = 't';
    fti_test_write_file(rec, data, len);
    fti_free(data);
    put(dir, "b.txt", "A second file, about the hills and the valleys beyond them.");
    REQUIRE(ingest1(home, dir, NULL, id2, &reused) == FTI_OK);
    CHECK_EQ_INT(reused, 0);
    REQUIRE(ingest1(clean, dir, NULL, idc, NULL) == FTI_OK);
    CHECK_EQ_STR(id2, idc);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    CHECK(read_docs(home, id2, &a) && read_docs(clean, idc, &b));
    CHECK(a.len == b.len && a.len && memcmp(a.data, b.data, a.len) == 0);
    CHECK(a.len && strstr(a.data, "the sea and") != NULL);
    fti_buf_free(&a);
    fti_buf_free(&b);
}

/* A damaged ref (refs/latest or a tag not holding a version id) is named as damaged, not taken
 * for "no version yet" or "tag not found"; gc refuses to run, since the version a damaged tag
 * kept cannot be told (it removed a tagged version as untagged). Tagging again repairs. */
FTI_TEST(store_damaged_refs) {
    const char *dir = fti_test_tmp("in"), *home = fti_test_tmp("ws");
    char id1[65], id2[65], got[65], path[4096];
    fti_store_gc_opts o;
    fti_store_gc_result res;
    fti_error err;
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    put(dir, "a.txt", "A first file with a few words about the sea and the shore.");
    REQUIRE(ingest1(home, dir, NULL, id1, NULL) == FTI_OK);
    put(dir, "b.txt", "A second file, about the hills and the valleys beyond them.");
    REQUIRE(ingest1(home, dir, NULL, id2, NULL) == FTI_OK);
    CHECK_OK(fti_store_tag(home, "keep", id1, &err));
    snprintf(path, sizeof path, "%s/store/refs/tags/keep", home);
    fti_test_write_file(path, "garbage\n", 8);
    CHECK(fti_store_resolve(home, "keep", got, &err) == FTI_ERR_FORMAT);
    CHECK(strstr(err.msg, "refs/tags/keep: damaged") != NULL);
    memset(&o, 0, sizeof o);
    o.keep_last = 1;
    CHECK(fti_store_gc(home, &o, &res, NULL, &err) == FTI_ERR_FORMAT);
    CHECK(strstr(err.msg, "refs/tags/keep: damaged") != NULL);
    CHECK_OK(fti_store_verify(home, id1, NULL, &err)); /* still there */
    CHECK_OK(fti_store_tag(home, "keep", id1, &err));
    CHECK_OK(fti_store_resolve(home, "keep", got, &err));
    CHECK_EQ_STR(got, id1);
    snprintf(path, sizeof path, "%s/store/refs/latest", home);
    fti_test_write_file(path, "", 0);
    CHECK(fti_store_resolve(home, NULL, got, &err) == FTI_ERR_FORMAT);
    CHECK(strstr(err.msg, "refs/latest: damaged") != NULL);
    CHECK(fti_store_gc(home, &o, &res, NULL, &err) == FTI_ERR_FORMAT);
    /* an ingest rewrites latest */
    REQUIRE(ingest1(home, dir, NULL, got, NULL) == FTI_OK);
    CHECK_EQ_STR(got, id2);
    CHECK_OK(fti_store_resolve(home, NULL, got, &err));
    CHECK_OK(fti_store_gc(home, &o, &res, NULL, &err));
    CHECK_EQ_INT(res.versions_kept, 2);
    CHECK_OK(fti_store_verify(home, NULL, NULL, &err));
}

/* list and show read the manifest: a damaged index (or token shard) no longer turns a version
 * into "(unreadable)" with no reason, nor hides what show reports; they name the damaged
 * object ("damaged: index: PATH: ..."), and show still exits 1. */
FTI_TEST(store_cli_damaged_index) {
    const char *dir = fti_test_tmp("in"), *home = fti_test_tmp("ws");
    char id[65], cmd[4096], *out;
    fti_dataset *ds = NULL;
    const char *hex;
    void *data = NULL;
    size_t len = 0;
    if (!fti_path_exists("build/fti-feature")) {
        fprintf(stderr, "    (build/fti-feature not built: skipped)\n");
        return;
    }
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    put(dir, "a.txt", "A first file with a few words about the sea and the shore.");
    REQUIRE(ingest1(home, dir, NULL, id, NULL) == FTI_OK);
    REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
    hex = fti_json_get_str(fti_json_get(fti_json_get(fti_dataset_manifest(ds), "files"), "index"),
                           "sha256", "");
    snprintf(cmd, sizeof cmd, "%s/store/objects/%.2s/%s", home, hex, hex);
    fti_dataset_close(ds);
    fti_test_write_file(cmd, "FTIBM25", 7);
    out = fti_strdup(fti_test_tmp("out.txt"));
    snprintf(cmd, sizeof cmd, "build/fti-feature --home '%s' list > '%s' 2>&1", home, out);
    CHECK(sh(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &data, &len, NULL) == FTI_OK);
    CHECK(strstr((char *)data, "1 docs") != NULL);
    CHECK(strstr((char *)data, "damaged: index: ") != NULL);
    CHECK(strstr((char *)data, "unreadable") == NULL);
    fti_free(data);
    snprintf(cmd, sizeof cmd, "build/fti-feature --home '%s' show > '%s' 2>&1", home, out);
    CHECK(sh(cmd) == 1);
    REQUIRE(fti_file_read(out, 0, &data, &len, NULL) == FTI_OK);
    CHECK(strstr((char *)data, id) != NULL);
    CHECK(strstr((char *)data, "is damaged: index: ") != NULL);
    fti_free(data);
    fti_free(out);
}

/* An ingest of unchanged inputs whose version lost an object (deleted, truncated: what verify
 * reports) makes the version again instead of only moving the refs: the objects come back, the
 * manifest stays as it was. A manifest that cannot be read is written again. */
FTI_TEST(store_reingest_repairs_missing_object) {
    const char *dir = fti_test_tmp("in"), *home = fti_test_tmp("ws");
    char id[65], id2[65], path[4096], docs[4096], *hex;
    fti_dataset *ds = NULL;
    void *m0 = NULL, *m1 = NULL;
    size_t n0 = 0, n1 = 0;
    fti_error err;
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    put(dir, "a.txt", "A first file with a few words about the sea and the shore.");
    REQUIRE(ingest1(home, dir, NULL, id, NULL) == FTI_OK);
    REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
    REQUIRE(fti_dataset_docs_path(ds) != NULL);
    snprintf(docs, sizeof docs, "%s", fti_dataset_docs_path(ds));
    hex = fti_strdup(fti_json_get_str(
        fti_json_get(fti_json_get(fti_dataset_manifest(ds), "files"), "index"), "sha256", ""));
    fti_dataset_close(ds);
    snprintf(path, sizeof path, "%s/store/versions/%s.json", home, id);
    REQUIRE(fti_file_read(path, 0, &m0, &n0, NULL) == FTI_OK);
    REQUIRE(unlink(docs) == 0);
    snprintf(path, sizeof path, "%s/store/objects/%.2s/%s", home, hex, hex);
    fti_test_write_file(path, "FTIBM25", 7);
    CHECK(fti_store_verify(home, NULL, NULL, &err) != FTI_OK);
    REQUIRE(ingest1(home, dir, NULL, id2, NULL) == FTI_OK);
    CHECK_EQ_STR(id2, id);
    CHECK_OK(fti_store_verify(home, NULL, NULL, &err));
    snprintf(path, sizeof path, "%s/store/versions/%s.json", home, id);
    REQUIRE(fti_file_read(path, 0, &m1, &n1, NULL) == FTI_OK);
    CHECK(n0 == n1 && memcmp(m0, m1, n0) == 0);
    fti_free(m1);
    /* the manifest itself */
    fti_test_write_file(path, m0, n0 / 2);
    CHECK(fti_store_verify(home, NULL, NULL, &err) != FTI_OK);
    REQUIRE(ingest1(home, dir, NULL, id2, NULL) == FTI_OK);
    CHECK_EQ_STR(id2, id);
    CHECK_OK(fti_store_verify(home, NULL, NULL, &err));
    fti_free(m0);
    fti_free(hex);
}

/* The path of object `name` (files.<name>) of version id into buf. */
static void object_of(const char *home, const char *id, const char *name, char *buf, size_t cap) {
    fti_dataset *ds = NULL;
    const char *hex = "";
    if (fti_dataset_open_index(&ds, home, id, NULL) == FTI_OK)
        hex = fti_json_get_str(fti_json_get(fti_json_get(fti_dataset_manifest(ds), "files"),
                                            name), "sha256", "");
    snprintf(buf, cap, "%s/store/objects/%.2s/%s", home, hex, hex);
    fti_dataset_close(ds);
}

/* An ingest given the tokenizer that an earlier ingest of the same inputs trained gets that
 * version (the same documents, tokens and chunks), not a second version of the same content
 * (fti-twin's first unchanged update after training made one), whatever vocabulary option the
 * later ingest has; a whole version only. */
FTI_TEST(store_given_tokenizer_reuses_trained_version) {
    const char *paths[1];
    char home[1024], id[65], id2[65], id3[65], tok[4096], tok2[4096];
    fti_ingest_opts o;
    char **ids = NULL;
    size_t n = 0;
    snprintf(home, sizeof home, "%s", fti_test_tmp("ws"));
    memset(&o, 0, sizeof o);
    o.vocab_size = 300;
    o.n_threads = 2;
    o.val_percent = 30;
    paths[0] = STORE_DATA "/kinds";
    REQUIRE(fti_store_ingest(home, paths, 1, &o, id, NULL, NULL) == FTI_OK);
    object_of(home, id, "tokenizer", tok, sizeof tok);
    /* a copy outside the store, as a user would give it */
    snprintf(tok2, sizeof tok2, "%s", fti_test_tmp("tok.bin"));
    {
        void *d = NULL;
        size_t len = 0;
        REQUIRE(fti_file_read(tok, 0, &d, &len, NULL) == FTI_OK);
        fti_test_write_file(tok2, d, len);
        fti_free(d);
    }
    o.tokenizer = tok2;
    REQUIRE(fti_store_ingest(home, paths, 1, &o, id2, NULL, NULL) == FTI_OK);
    CHECK_EQ_STR(id2, id);
    CHECK(fti_store_list(home, &ids, &n, NULL) == FTI_OK);
    CHECK_EQ_INT(n, 1);
    fti_store_list_free(ids, n);
    CHECK_OK(fti_store_verify(home, NULL, NULL, NULL));
    /* another vocabulary option: the given tokenizer's size is the one that was trained */
    o.vocab_size = 320;
    REQUIRE(fti_store_ingest(home, paths, 1, &o, id3, NULL, NULL) == FTI_OK);
    CHECK_EQ_STR(id3, id);
    /* the trained version damaged (an object gone): the given tokenizer makes its own version */
    o.vocab_size = 300;
    REQUIRE(unlink(tok) == 0);
    REQUIRE(fti_store_ingest(home, paths, 1, &o, id2, NULL, NULL) == FTI_OK);
    CHECK(strcmp(id2, id) != 0);
    ids = NULL;
    n = 0;
    CHECK(fti_store_list(home, &ids, &n, NULL) == FTI_OK);
    CHECK_EQ_INT(n, 2);
    fti_store_list_free(ids, n);
}

/* Search needs only the index: with a token shard damaged (truncated) or missing, the version
 * still opens for search (fti_dataset_open_index, fti-feature search) and finds its chunks,
 * while what reads the shards (fti_shard_open, fti_dataset_open, training) refuses it naming the
 * shard's file, and verify still fails; a damaged index is refused to search too, naming it. */
FTI_TEST(store_search_damaged_shard) {
    const char *paths[1];
    char home[1024], id[65], tr[4096], va[4096], ix[4096], cmd[8192], out[1024];
    fti_ingest_opts o;
    fti_dataset *ds = NULL;
    fti_token_shard shard;
    fti_search_hit h[3];
    fti_error err;
    void *data = NULL;
    size_t len = 0;
    int cli = fti_path_exists("build/fti-feature");
    snprintf(home, sizeof home, "%s", fti_test_tmp("ws"));
    snprintf(out, sizeof out, "%s", fti_test_tmp("out.txt"));
    memset(&o, 0, sizeof o);
    o.vocab_size = 300;
    o.n_threads = 2;
    o.val_percent = 30;
    paths[0] = STORE_DATA "/kinds";
    REQUIRE(fti_store_ingest(home, paths, 1, &o, id, NULL, NULL) == FTI_OK);
    object_of(home, id, "train", tr, sizeof tr);
    object_of(home, id, "val", va, sizeof va);
    object_of(home, id, "index", ix, sizeof ix);
    /* intact: both opens agree, the index-only one without shards */
    REQUIRE(fti_dataset_open(&ds, home, id, NULL) == FTI_OK);
    CHECK(fti_dataset_shard(ds, FTI_SPLIT_TRAIN) != NULL);
    fti_dataset_close(ds);
    ds = NULL;
    REQUIRE(fti_dataset_open_index(&ds, home, id, NULL) == FTI_OK);
    CHECK(fti_dataset_shard(ds, FTI_SPLIT_TRAIN) == NULL);
    CHECK(fti_dataset_shard(ds, FTI_SPLIT_VAL) == NULL);
    CHECK(fti_dataset_tokenizer_path(ds) != NULL);
    CHECK(fti_dataset_search(ds, "sandwiches map", 14, 3, h) >= 1);
    fti_dataset_close(ds);
    ds = NULL;

    /* the train shard truncated to its magic */
    REQUIRE(fti_test_write_file(tr, "FTITOKS", 7) == 0);
    CHECK(fti_shard_open(&shard, tr, 0, &err) == FTI_ERR_FORMAT);
    CHECK(strstr(err.msg, tr) != NULL);
    CHECK(fti_dataset_open(&ds, home, id, &err) == FTI_ERR_FORMAT);
    CHECK(ds == NULL);
    CHECK(strstr(err.msg, "train shard: ") != NULL && strstr(err.msg, tr) != NULL);
    REQUIRE(fti_dataset_open_index(&ds, home, id, &err) == FTI_OK);
    CHECK(fti_dataset_shard(ds, FTI_SPLIT_TRAIN) == NULL);
    /* the manifest's statistics still come (fti-serve's token drift reads them) */
    CHECK(fti_dataset_get_stats(ds) && fti_dataset_get_stats(ds)->token_counts != NULL);
    {
        size_t n = fti_dataset_search(ds, "sandwiches map", 14, 3, h);
        CHECK(n >= 1);
        if (n) CHECK(strstr(h[0].source, "archive.mbox#msg 2") != NULL);
    }
    fti_dataset_close(ds);
    ds = NULL;
    CHECK(fti_store_verify(home, id, NULL, &err) != FTI_OK);
#if !defined(FTI_NO_TRAIN)
    {
        /* training reads the shards: refused, naming the file */
        fti_train_run_opts ro;
        memset(&ro, 0, sizeof ro);
        ro.dataset = id;
        CHECK(fti_train_run(home, &ro, NULL, &err) == FTI_ERR_FORMAT);
        CHECK(strstr(err.msg, "train shard: ") != NULL && strstr(err.msg, tr) != NULL);
    }
#endif
    if (cli) {
        snprintf(cmd, sizeof cmd,
                 "build/fti-feature --home '%s' search sandwiches map -k 2 > '%s' 2>&1", home, out);
        CHECK(sh(cmd) == 0);
        REQUIRE(fti_file_read(out, 0, &data, &len, NULL) == FTI_OK);
        CHECK(strstr((char *)data, " 1. score ") != NULL);
        CHECK(strstr((char *)data, "archive.mbox#msg 2") != NULL);
        fti_free(data);
        data = NULL;
        /* show, which opens everything, still calls the version damaged and names the file */
        snprintf(cmd, sizeof cmd, "build/fti-feature --home '%s' show > '%s' 2>&1", home, out);
        CHECK(sh(cmd) == 1);
        REQUIRE(fti_file_read(out, 0, &data, &len, NULL) == FTI_OK);
        CHECK(strstr((char *)data, "is damaged: train shard: ") != NULL);
        CHECK(strstr((char *)data, tr) != NULL);
        fti_free(data);
        data = NULL;
    }

    /* the val shard missing */
    REQUIRE(unlink(va) == 0);
    CHECK(fti_dataset_open(&ds, home, id, &err) != FTI_OK);
    CHECK(strstr(err.msg, "train shard: ") != NULL); /* the first damaged one */
    CHECK(fti_shard_open(&shard, va, 0, &err) != FTI_OK);
    CHECK(strstr(err.msg, va) != NULL);
    REQUIRE(fti_dataset_open_index(&ds, home, id, &err) == FTI_OK);
    CHECK(fti_dataset_search(ds, "sandwiches map", 14, 3, h) >= 1);
    fti_dataset_close(ds);
    ds = NULL;

    /* a damaged index is refused to search as well, naming it */
    REQUIRE(fti_test_write_file(ix, "FTIBM25", 7) == 0);
    CHECK(fti_dataset_open_index(&ds, home, id, &err) == FTI_ERR_FORMAT);
    CHECK(ds == NULL);
    CHECK(strstr(err.msg, "index: ") != NULL && strstr(err.msg, ix) != NULL);
    CHECK(fti_dataset_open(&ds, home, id, &err) == FTI_ERR_FORMAT);
    CHECK(strstr(err.msg, "index: ") != NULL && strstr(err.msg, ix) != NULL);
    if (cli) {
        snprintf(cmd, sizeof cmd,
                 "build/fti-feature --home '%s' search sandwiches -k 2 > '%s' 2>&1", home, out);
        CHECK(sh(cmd) == 1);
        REQUIRE(fti_file_read(out, 0, &data, &len, NULL) == FTI_OK);
        CHECK(strstr((char *)data, "index: ") != NULL && strstr((char *)data, ix) != NULL);
        CHECK(strstr((char *)data, "score") == NULL);
        fti_free(data);
    }
}

/* An ingest whose input path does not exist fails before it makes the workspace: a mistyped
 * path leaves no empty workspace behind (it made HOME/store first). */
FTI_TEST(store_ingest_missing_input_makes_nothing) {
    char home[1024], id[65];
    const char *paths[1];
    fti_error err;
    snprintf(home, sizeof home, "%s", fti_test_tmp("ws-missing"));
    paths[0] = fti_test_tmp("no-such-folder");
    CHECK_EQ_INT(fti_store_ingest(home, paths, 1, NULL, id, NULL, &err), FTI_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "no-such-folder: no such file or directory") != NULL);
    CHECK(!fti_path_exists(home));
}

/* A newcomer's own archive (U43): a mailbox with a correspondent's mail and untitled posts.
 * ingest and show say whose writing is kept (documents per author) and, without --authors, how
 * to keep only one's own; with --authors, which filter made the version. search prints an
 * untitled post as "(untitled)" and a chunk's paragraphs as indented lines (its line breaks
 * began lines at column 0, among the hits); fti-infer names a retrieved untitled document by
 * its source (it printed "score 5.413: " and nothing). */
FTI_TEST(store_cli_own_archive_authors_and_untitled) {
    const char *dir = fti_test_tmp("mine"), *home = fti_test_tmp("ws"), *h2 = fti_test_tmp("ws2");
    char cmd[4096], id[64], *out;
    const char *s;
    void *data = NULL;
    size_t len = 0;
    if (!fti_path_exists("build/fti-feature")) {
        fprintf(stderr, "    (build/fti-feature not built: skipped)\n");
        return;
    }
    out = fti_strdup(fti_test_tmp("out.txt"));
    REQUIRE(out != NULL);
    REQUIRE(fti_mkdirs(dir, NULL) == FTI_OK);
    REQUIRE(put(dir, "sent.mbox",
                "From robin@example.org Mon Jan  3 10:00:00 2022\n"
                "From: Robin Hale <robin@example.org>\nTo: Dana Okafor <dana@example.org>\n"
                "Subject: Lighthouses\nDate: Mon, 03 Jan 2022 10:00:00 +0000\n\n"
                "I went to see the lighthouse on the point again, and the keeper showed me "
                "the lamp room and the old brass fittings.\n\n"
                "From dana@example.org Tue Jan  4 10:00:00 2022\n"
                "From: Dana Okafor <dana@example.org>\nTo: Robin Hale <robin@example.org>\n"
                "Subject: Re: Lighthouses\nDate: Tue, 04 Jan 2022 10:00:00 +0000\n\n"
                "Next time take me with you: I have never been up a lighthouse, and the "
                "ferry runs twice a day in winter.\n") == 0);
    REQUIRE(put(dir, "posts.jsonl",
                "{\"text\": \"The harbour seals were back on the sandbar this morning.\\n\\n"
                "Seven of them, counted twice, with the tide coming in around them.\"}\n") == 0);
    snprintf(cmd, sizeof cmd, "build/fti-feature --home '%s' ingest '%s' --vocab 300 > '%s' 2>&1",
             home, dir, out);
    REQUIRE(sh(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &data, &len, NULL) == FTI_OK);
    s = (const char *)data;
    CHECK(strstr(s, "\nauthors (documents kept):\n") != NULL);
    CHECK(strstr(s, "             1  Dana Okafor\n") != NULL);
    CHECK(strstr(s, "             1  Robin Hale\n") != NULL);
    CHECK(strstr(s, "             1  (no author: kept whatever --authors says)\n") != NULL);
    CHECK(strstr(s, "all of them are kept (no --authors)") != NULL);
    CHECK(strstr(s, "--authors \"NAME,ADDRESS,HANDLE\"") != NULL);
    fti_free(data);
    /* search: the untitled post, its two paragraphs on one indented line */
    snprintf(cmd, sizeof cmd, "build/fti-feature --home '%s' search seals sandbar -k 1 > '%s'",
             home, out);
    REQUIRE(sh(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &data, &len, NULL) == FTI_OK);
    s = (const char *)data;
    CHECK(strstr(s, "(untitled)  [") != NULL);
    CHECK(strstr(s, "posts.jsonl#line 1]") != NULL);
    CHECK(strstr(s, "\n    The harbour seals were back on the sandbar this morning. Seven "
                    "of them,") != NULL);
    CHECK(strstr(s, "\n\n    ") == NULL || strstr(s, "\n\n    ") > strstr(s, "Seven"));
    fti_free(data);
    /* with --authors: the filter is said, the correspondent gone, no advice */
    snprintf(cmd, sizeof cmd,
             "build/fti-feature --home '%s' ingest '%s' --vocab 300 --authors 'Robin Hale' "
             "--quiet > /dev/null 2>&1 && build/fti-feature --home '%s' show > '%s' 2>&1",
             h2, dir, h2, out);
    REQUIRE(sh(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &data, &len, NULL) == FTI_OK);
    s = (const char *)data;
    CHECK(strstr(s, "             1  Robin Hale\n") != NULL);
    CHECK(strstr(s, "  Dana Okafor\n") == NULL);
    CHECK(strstr(s, "  --authors Robin Hale: anyone else's documents are rejected") != NULL);
    CHECK(strstr(s, "all of them are kept") == NULL);
    CHECK(strstr(s, "\nrejected (1):\n  other_author     ") != NULL);
    fti_free(data);
    /* more than 20 rejections: show says how many there are, and where the rest are */
    {
        char many[2048];
        size_t k, o = 0;
        for (k = 0; k < 23; k++) /* too short: 2 or 3 characters */
            o += (size_t)snprintf(many + o, sizeof many - o, "{\"text\": \"x%lu\"}\n",
                                  (unsigned long)k);
        REQUIRE(put(dir, "short.jsonl", many) == 0);
    }
    snprintf(cmd, sizeof cmd,
             "build/fti-feature --home '%s' ingest '%s' --vocab 300 --authors 'Robin Hale' "
             "--quiet > /dev/null 2>&1 && build/fti-feature --home '%s' show > '%s' 2>&1",
             h2, dir, h2, out);
    REQUIRE(sh(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &data, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)data, "\nrejected (the first 20 of 24; show --json lists them "
                                     "all):\n") != NULL);
    fti_free(data);
    snprintf(cmd, sizeof cmd, "%s/short.jsonl", dir);
    REQUIRE(fti_file_remove(cmd, NULL) == FTI_OK);
    /* nobody named and no --authors (a folder of notes): no authors table */
    snprintf(cmd, sizeof cmd,
             "build/fti-feature --home '%s/ws3' ingest '%s/posts.jsonl' --no-tokenizer > '%s' "
             "2>&1", fti_test_tmp_dir, dir, out); /* (fti_test_tmp has 4 slots: dir's is one) */
    REQUIRE(sh(cmd) == 0);
    REQUIRE(fti_file_read(out, 0, &data, &len, NULL) == FTI_OK);
    CHECK(strstr((const char *)data, "documents kept") != NULL);
    CHECK(strstr((const char *)data, "authors (") == NULL);
    fti_free(data);
    /* fti-infer: a model trained on the version retrieves the untitled post by its source */
    if (fti_path_exists("build/fti-train") && fti_path_exists("build/fti-infer")) {
        snprintf(cmd, sizeof cmd,
                 "build/fti-train --home '%s' --preset tiny --steps 2 --batch 2 --threads 1 "
                 "--quiet > '%s' 2>&1", home, out);
        REQUIRE(sh(cmd) == 0);
        REQUIRE(fti_file_read(out, 0, &data, &len, NULL) == FTI_OK);
        s = (const char *)data;
        { /* the model id: the last word */
            const char *e = s + len, *b;
            while (e > s && (e[-1] == '\n' || e[-1] == ' ')) e--;
            for (b = e; b > s && b[-1] != ' ' && b[-1] != '\n';) b--;
            REQUIRE(e > b && (size_t)(e - b) < sizeof id);
            memcpy(id, b, (size_t)(e - b));
            id[e - b] = 0;
        }
        fti_free(data);
        snprintf(cmd, sizeof cmd,
                 "build/fti-infer --home '%s' --alias %s --threads 1 -n 1 --rag-k 1 "
                 "--prompt 'seals on the sandbar' 2>&1 >/dev/null | grep retrieved > '%s'",
                 home, id, out);
        CHECK(sh(cmd) == 0);
        REQUIRE(fti_file_read(out, 0, &data, &len, NULL) == FTI_OK);
        s = (const char *)data;
        CHECK(strstr(s, ": (untitled) ") != NULL);
        CHECK(strstr(s, "posts.jsonl#line 1\n") != NULL);
        fti_free(data);
    }
    fti_free(out);
}

/* fti__st_unwrap(in, flowed, delsp) compared with want. */
static int unwrap_is(const char *in, int flowed, int delsp, const char *want) {
    fti_buf b;
    int ok;
    memset(&b, 0, sizeof b);
    fti__st_unwrap(in, strlen(in), flowed, delsp, &b);
    ok = b.len == strlen(want) && memcmp(b.data ? b.data : "", want, b.len) == 0;
    if (!ok) fprintf(stderr, "    unwrap -> \"%.*s\"\n", (int)b.len, b.data ? b.data : "");
    fti_buf_free(&b);
    return ok;
}

/* Plain text wrapped at 72 columns (mail programs, editors) has its paragraphs joined into one
 * line each, as posts have them; blank lines, short lines (greetings, addresses, poems), lists,
 * indented lines and lines broken on purpose stay (since processing format 15). */
FTI_TEST(store_unwrap_plain_text) {
    static const char para[] =
        "The bus was late again, so I walked the long way past the river and the\n"
        "mill. It took an hour, but the light on the water was worth every minute\n"
        "of it, and I would do it again tomorrow.\n";
    static const char joined[] =
        "The bus was late again, so I walked the long way past the river and the mill. It took "
        "an hour, but the light on the water was worth every minute of it, and I would do it "
        "again tomorrow.\n";
    char in[1024], want[1024];
    snprintf(in, sizeof in, "Hi Ann,\n\n%s\nCheers,\nBob\n", para);
    snprintf(want, sizeof want, "Hi Ann,\n\n%s\nCheers,\nBob\n", joined);
    CHECK(unwrap_is(in, 0, 0, want));
    /* CRLF line ends too */
    CHECK(unwrap_is("The bus was late again, so I walked the long way past the river and the\r\n"
                    "mill. It took an hour.\r\n",
                    0, 0,
                    "The bus was late again, so I walked the long way past the river and the "
                    "mill. It took an hour.\r\n"));
    /* lists, indented lines, bullets and "(a)" items start lines of their own */
    CHECK(unwrap_is("Things to bring this weekend to the cabin, in no particular order at all:\n"
                    "- a map\n* boots\n1. bread\n  indented code line\n(a) rope\nb) tent\n"
                    "\xe2\x80\xa2 a lamp\n",
                    0, 0,
                    "Things to bring this weekend to the cabin, in no particular order at all:\n"
                    "- a map\n* boots\n1. bread\n  indented code line\n(a) rope\nb) tent\n"
                    "\xe2\x80\xa2 a lamp\n"));
    /* a line ended early on purpose: its next word would have fitted */
    CHECK(unwrap_is("My new address, for your records, is below; the old one stops working at\n"
                    "the end of the month, so please do write it down somewhere safe.\n"
                    "Ann Lee\n12 Mill Road\n",
                    0, 0,
                    "My new address, for your records, is below; the old one stops working at "
                    "the end of the month, so please do write it down somewhere safe.\n"
                    "Ann Lee\n12 Mill Road\n"));
    CHECK(unwrap_is("This one is a line of sixty characters or so, and it ends.\nThen more.\n", 0,
                    0, "This one is a line of sixty characters or so, and it ends.\nThen more.\n"));
    /* a poem's short lines; quotes and parentheses opening a wrapped line */
    CHECK(unwrap_is("The fog comes\non little cat feet.\n", 0, 0,
                    "The fog comes\non little cat feet.\n"));
    CHECK(unwrap_is("Suppose you have a variable called \"x_cnt\" and you want to change it to\n"
                    "\"x_counter\" in all of the files, and (of course) nowhere else at all.\n",
                    0, 0,
                    "Suppose you have a variable called \"x_cnt\" and you want to change it to "
                    "\"x_counter\" in all of the files, and (of course) nowhere else at all.\n"));
    /* a paragraph per line (a line of words over 80 characters): not wrapped, left alone */
    CHECK(unwrap_is("A first paragraph written on one long line, as a phone writes it, without "
                    "any wrapping at all.\nA second one, shorter but over fifty characters wide "
                    "at that.\n",
                    0, 0,
                    "A first paragraph written on one long line, as a phone writes it, without "
                    "any wrapping at all.\nA second one, shorter but over fifty characters wide "
                    "at that.\n"));
    /* format=flowed: a line ending in a blank goes on; space-stuffing goes; "-- " is no soft
     * break, nor one before a blank line; delsp=yes drops the blank */
    CHECK(unwrap_is("A soft break here \nand a hard one\n From stuffed \nline\nlast \n\n-- \nsig\n",
                    1, 0,
                    "A soft break here and a hard one\nFrom stuffed line\nlast \n\n-- \nsig\n"));
    CHECK(unwrap_is("Donau\xc2\xad \ndampf \nschiff\n", 1, 1, "Donau\xc2\xad" "dampfschiff\n"));
    CHECK(unwrap_is("", 0, 0, ""));
    CHECK(unwrap_is("", 1, 0, ""));
    /* lines of about the same width that are no paragraph stay (they were joined): a list of
     * addresses, a poem whose lines start with capitals, a table's rows; a paragraph with a
     * capital at the start of one of its lines is still joined */
    {
        static const char *const alone[] = {
            "Robin Hale, 12 Long Street, Springfield, IL 62701, United States\n"
            "Alice Smith, 34 Short Avenue, Shelbyville, IL 62565, United States\n"
            "Bob Jones, 56 Middle Road, Capital City, IL 62702, United States\n",
            "Robin Hale walked along the river on a grey morning in May\n"
            "Counting the herons that stood in the reeds like old men\n"
            "\xc3\x89tienne waiting for something that never came down the water\n",
            "name            department        phone          room\n"
            "robin hale      engineering       555-0101       b12\n"
            "alice smith     marketing\t555-0102       c07\n"};
        size_t k;
        for (k = 0; k < sizeof alone / sizeof alone[0]; k++)
            CHECK(unwrap_is(alone[k], 0, 0, alone[k]));
        CHECK(unwrap_is("I went to the market this morning and bought a great many apples and\n"
                        "pears, which I then carried home in a basket that was far too small\n"
                        "London had never seen, so that by the time I got to the door half of\n"
                        "them had fallen out.\n",
                        0, 0,
                        "I went to the market this morning and bought a great many apples and "
                        "pears, which I then carried home in a basket that was far too small "
                        "London had never seen, so that by the time I got to the door half of "
                        "them had fallen out.\n"));
    }
}

/* A mail's text/plain part (quoted-printable, base64, format=flowed) and a .txt note read as
 * written a paragraph per line; a note written so already is unchanged (format 15). */
FTI_TEST(store_mail_txt_wrapped_paragraphs) {
    static const export_file files[] = {
        {"mail/archive.mbox",
         "From ann@example.com Mon Mar  2 10:00:00 2020\n"
         "From: Ann Lee <ann@example.com>\nSubject: Walk\nDate: Mon, 2 Mar 2020 10:00:00 +0000\n"
         "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n"
         "\n"
         "The bus was late again, so I walked the long way past the river and the\n"
         "mill. It took an hour, but the light on the water was worth every minute\n"
         "of it, and I would do it again tomorrow.\n\n"
         "- a map\n- boots\n\n-- \nAnn Lee\n12 Mill Road\n\n"
         "From ann@example.com Mon Mar  2 11:00:00 2020\n"
         "From: Ann Lee <ann@example.com>\nSubject: Flowed\nDate: Mon, 2 Mar 2020 11:00:00 +0000\n"
         "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=no\n\n"
         "Apple Mail writes its lines so: each one that goes on ends in a \n"
         "blank, and the last line of a paragraph does not.\nA line of its own.\n"},
        {"notes/wrapped.txt",
         "Notes on rye\n\nThe rye starter wants feeding twice a day in summer, and once a day in\n"
         "the cold months, when it sleeps in the cellar next to the potatoes and\n"
         "the apples.\n"},
        {"notes/lines.txt",
         "Notes on wheat\n\nThe wheat starter is fed once a day, whatever the month, and kept on "
         "the kitchen shelf by the window.\nA second paragraph, on a line of its own as well, "
         "that says nothing new at all.\n"}};
    char home[512], id[65];
    fti_buf got;
    REQUIRE(ingest_exports("unwrap", files, sizeof files / sizeof files[0], NULL, home, id, &got));
    CHECK(strstr(got.data, "past the river and the mill. It took an hour, but the light on the "
                           "water was worth every minute of it, and I would do it again "
                           "tomorrow.\\n\\n- a map\\n- boots\"") != NULL);
    CHECK(strstr(got.data, "each one that goes on ends in a blank, and the last line of a "
                           "paragraph does not.\\nA line of its own.\"") != NULL);
    CHECK(strstr(got.data, "Notes on rye\\n\\nThe rye starter wants feeding twice a day in "
                           "summer, and once a day in the cold months, when it sleeps in the "
                           "cellar next to the potatoes and the apples.\"") != NULL);
    CHECK(strstr(got.data, "by the window.\\nA second paragraph, on a line") != NULL);
    fti_buf_free(&got);
}

/* fti__st_byline(b, author): 1 and the date when b is a byline of author. */
static int byline_is(const char *b, const char *author, int want, const char *want_date) {
    char d[32];
    int r = fti__st_byline(b, strlen(b), author, d);
    if (r != want || strcmp(d, want_date) != 0) {
        fprintf(stderr, "    byline \"%s\" -> %d \"%s\"\n", b, r, d);
        return 0;
    }
    return 1;
}

/* fti__st_title_cut(title, site, author, page) compared with want. */
static int title_cut_is(const char *title, const char *site, const char *author, const char *page,
                        const char *want) {
    char *t = fti__st_title_cut(fti_strdup(title), site, author, page, strlen(page));
    int ok = t && strcmp(t, want) == 0;
    if (!ok) fprintf(stderr, "    title \"%s\" -> \"%s\"\n", title, t ? t : "(null)");
    fti_free(t);
    return ok;
}

/* An HTML page's title loses the site's name, and its text the heading that repeats the title
 * and the author's byline after it, whose date is the page's when it has none (format 15;
 * before: "Basic syntax | Robin Hale", and "Basic syntax\n\nby Robin Hale, 29 August 2024\n\n"
 * opened every page's text). */
FTI_TEST(store_html_title_and_byline) {
    static const export_file files[] = {
        {"syntax.html",
         "<html><head><title>Basic syntax | Robin Hale</title>"
         "<meta name=\"author\" content=\"Robin Hale\"></head><body><nav><a href=\"/\">Home</a>"
         "</nav><article><h1>Basic syntax</h1>\n<p class=\"byline\">by <span class=\"p-author\">"
         "Robin Hale</span>, <time datetime=\"2024-08-29\">29 August 2024</time></p>\n"
         "<p>Using an existing syntax file to start with will save you a lot of time.</p>"
         "</article></body></html>"},
        {"posted.html",
         "<html><head><title>The Daily Loaf \xe2\x80\x94 Rye in winter</title>"
         "<meta property=\"og:site_name\" content=\"The Daily Loaf\">"
         "<meta name=\"author\" content=\"Ann Lee\"></head><body><h1>Rye in winter</h1>"
         "<p>Posted on March 3, 2020 by Ann Lee</p><p>The starter sleeps in the cellar all "
         "winter long and wakes slowly.</p></body></html>"},
        {"by.html", /* text that merely starts with "by" stays */
         "<html><head><title>Walking | Ann Lee</title><meta name=\"author\" content=\"Ann Lee\">"
         "</head><body><h1>Walking</h1><p>By the way, Ann Lee walks to work on most days of "
         "the week.</p></body></html>"},
        {"theme.html", /* a theme's site name in the header, linked home: not the title */
         "<html><head><title>Bread | Crumbs</title></head><body><header><h1><a href=\"/\">"
         "Crumbs</a></h1></header><h2>Bread</h2><p>Flour, water and salt, and a long wait for "
         "the dough to rise.</p></body></html>"}};
    char home[512], id[65], title[200], date[32];
    fti_buf got;
    REQUIRE(ingest_exports("html_byline", files, sizeof files / sizeof files[0], NULL, home, id,
                           &got));
    CHECK(doc_title_date(home, id, "syntax.html", title, date));
    CHECK_EQ_STR(title, "Basic syntax");
    CHECK_EQ_STR(date, "2024-08-29");
    CHECK(strstr(got.data, "\"text\":\"Using an existing syntax file") != NULL);
    CHECK(doc_title_date(home, id, "posted.html", title, date));
    CHECK_EQ_STR(title, "Rye in winter");
    CHECK_EQ_STR(date, "2020-03-03");
    CHECK(strstr(got.data, "\"text\":\"The starter sleeps") != NULL);
    CHECK(doc_title_date(home, id, "by.html", title, date));
    CHECK_EQ_STR(title, "Walking");
    CHECK(strstr(got.data, "\"text\":\"By the way, Ann Lee walks") != NULL);
    CHECK(doc_title_date(home, id, "theme.html", title, date));
    CHECK_EQ_STR(title, "Bread");
    CHECK(strstr(got.data, "Crumbs\\n\\nBread\\n\\nFlour, water") != NULL); /* not the title */
    fti_buf_free(&got);

    CHECK(byline_is("by Robin Hale", "Robin Hale", 1, ""));
    CHECK(byline_is("Robin Hale", "robin hale", 1, ""));
    CHECK(byline_is("by Robin Hale, 29 August 2024", "Robin Hale", 1, "2024-08-29"));
    CHECK(byline_is("Robin Hale \xc2\xb7 2024-08-29", "Robin Hale", 1, "2024-08-29"));
    CHECK(byline_is("Posted by robin hale on 3 Mar 2020", "Robin Hale", 1, "2020-03-03"));
    CHECK(byline_is("Written by Robin Hale | 29 August 2024", "Robin Hale", 1, "2024-08-29"));
    CHECK(byline_is("By the way, Robin Hale said it", "Robin Hale", 0, ""));
    CHECK(byline_is("by Robin Hale, who knows", "Robin Hale", 0, ""));
    CHECK(byline_is("Photos by Robin Hale", "Robin Hale", 0, ""));
    CHECK(byline_is("by Robin Hales", "Robin Hale", 0, ""));
    CHECK(byline_is("by Bob Stone, 29 August 2024", "Robin Hale", 0, ""));
    CHECK(byline_is("by Robin Hale", NULL, 0, ""));

    CHECK(title_cut_is("Basic syntax | Robin Hale", NULL, "Robin Hale", "", "Basic syntax"));
    CHECK(title_cut_is("Robin Hale - Basic syntax", NULL, "Robin Hale", "", "Basic syntax"));
    CHECK(title_cut_is("Post | Blog | Robin Hale", "Blog", "Robin Hale", "", "Post"));
    CHECK(title_cut_is("Post - part 2 :: Site", NULL, NULL, "<h1>Post - part 2</h1>",
                       "Post - part 2"));
    CHECK(title_cut_is("Tom - a life", NULL, "Tom", "<h1>Tom - a life</h1>", "Tom - a life"));
    CHECK(title_cut_is("Emacs - a love story", NULL, "Robin Hale", "", "Emacs - a love story"));
    CHECK(title_cut_is("Post | Crumbs", NULL, NULL,
                       "<header><h1>Crumbs</h1></header><article><h1>Post</h1></article>",
                       "Post"));
    CHECK(title_cut_is("Post | Crumbs", NULL, NULL, "<header><h1>Crumbs</h1></header>",
                       "Post | Crumbs")); /* nothing tells */
    CHECK(title_cut_is("Crumbs | Post", NULL, NULL,
                       "<a href=\"https://crumbs.example/\">Crumbs</a>", "Post"));
}
