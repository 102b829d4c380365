/* fti-registry: the model registry of a workspace (models trained by fti-train).
 *
 *   build/fti-registry [--home DIR] list
 *   build/fti-registry [--home DIR] show ID|ALIAS [--json]
 *   build/fti-registry [--home DIR] promote ID ALIAS
 *   build/fti-registry [--home DIR] rollback ALIAS
 *   build/fti-registry [--home DIR] lineage ID|ALIAS
 *   build/fti-registry [--home DIR] merge ADAPTER [--name NAME]
 *   build/fti-registry [--home DIR] add FILE [--alias NAME] [--name NAME] [--parent ID|ALIAS]
 *   build/fti-registry [--home DIR] verify [ID|ALIAS]
 *
 * Example:  build/fti-registry promote 3f2a9c0d1e2b4a5c production
 *           build/fti-quantize twin/models/3f2a9c0d1e2b4a5c/model.gguf q4.gguf q4_0 &&
 *           build/fti-registry add q4.gguf --parent 3f2a9c0d --alias production-q4
 * Models live in HOME/models/<id>/ (model.gguf, card.json); aliases in HOME/models/aliases.json
 * move atomically and keep a history, so `rollback` restores the previous target.
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: fti-registry [--home DIR] COMMAND\n"
        "\n"
        "The registry of trained models. Workspace: --home DIR, else $FTI_HOME, else ./twin.\n"
        "\n"
        "  list                      every model, oldest first, with its aliases\n"
        "  show ID|ALIAS [--json]    a model's card (--json: the card itself)\n"
        "  promote ID ALIAS          point ALIAS (production, staging, any name) at a model\n"
        "  rollback ALIAS            point ALIAS back at its previous model\n"
        "  lineage ID|ALIAS          the model, its parents, their dataset versions and the\n"
        "                            source files those were built from\n"
        "  merge ADAPTER [--name N]  merge a registered LoRA adapter into its base model and\n"
        "                            register the result (prints its id last)\n"
        "  add FILE [--alias A] [--name N] [--parent ID|ALIAS]\n"
        "                            register an existing GGUF llama model (fti-quantize's\n"
        "                            output, a model from elsewhere): copied into the registry\n"
        "                            with a card built from the file (config, weight type and\n"
        "                            the lineage keys fti's trainer writes: dataset, tokenizer,\n"
        "                            parent, training figures); --parent names the registered\n"
        "                            model it derives from (else the file's own parent key),\n"
        "                            --alias points an alias at it; prints the id last.\n"
        "                            A file registered before keeps its card (\"already\n"
        "                            registered as ID\"): --name and --parent change just\n"
        "                            those fields, --alias moves the alias. Every argument is\n"
        "                            checked before anything is written.\n"
        "  verify [ID|ALIAS]         re-hash every registered model file (or the one named)\n"
        "                            against the SHA-256 on its card (after a restore, or\n"
        "                            when a model misbehaves); exit status 1 if one differs\n"
        "                            or is missing\n"
        "\n"
        "ID may be a unique prefix of a model id (at least 4 hex digits); an ambiguous one is\n"
        "refused with the ids it starts. Paths on a card (run, metrics, loss curve) are\n"
        "relative to the workspace and shown under the home given, so a copied workspace\n"
        "shows its own files.\n");
}

static int load_card(const char *home, const char *ref, char id[17], fti_json_doc **doc) {
    fti_error err;
    fti_buf b;
    memset(&b, 0, sizeof(b));
    if (fti_registry_resolve(home, ref, id, &err) != FTI_OK ||
        fti_registry_card(home, id, &b, &err) != FTI_OK ||
        fti_json_parse(b.data, b.len, NULL, doc, NULL, &err) != FTI_OK) {
        fprintf(stderr, "fti-registry: %s\n", err.msg);
        fti_buf_free(&b);
        return 0;
    }
    fti_buf_free(&b);
    return 1;
}

/* A card's figure printed with fmt into buf, or "-" when the card has none (null: a run whose
 * dataset has no validation split, an adapter's train loss), not a made-up 0. */
static const char *figure(const fti_json *c, const char *key, const char *fmt, char *buf,
                          size_t n) {
    const fti_json *v = fti_json_get(c, key);
    if (!v || v->type != FTI_JSON_NUMBER) return "-";
    snprintf(buf, n, fmt, fti_json_get_num(c, key, 0));
    return buf;
}

/* Aliases pointing at id, comma-separated, into out. */
static void aliases_of(const fti_json *aliases, const char *id, char *out, size_t n) {
    const fti_json *a;
    size_t len = 0;
    out[0] = 0;
    for (a = aliases ? aliases->child : NULL; a; a = a->next)
        if (strcmp(fti_json_get_str(a, "id", ""), id) == 0 && len + a->key_len + 2 < n) {
            if (len) out[len++] = ',';
            memcpy(out + len, a->key, a->key_len);
            len += a->key_len;
            out[len] = 0;
        }
}

static int cmd_list(const char *home) {
    fti_buf ids, al;
    fti_error err;
    fti_json_doc *adoc = NULL;
    const char *p;
    memset(&ids, 0, sizeof(ids));
    memset(&al, 0, sizeof(al));
    if (fti_registry_list(home, &ids, &err) != FTI_OK ||
        fti_registry_aliases(home, &al, &err) != FTI_OK ||
        fti_json_parse(al.data, al.len, NULL, &adoc, NULL, &err) != FTI_OK) {
        fprintf(stderr, "fti-registry: %s\n", err.msg);
        fti_buf_free(&ids);
        fti_buf_free(&al);
        return 1;
    }
    if (ids.len == 0) printf("no models in %s\n", home);
    else
        printf("%-16s  %-20s  %-12s  %-16s  %9s  %10s  %s\n", "id", "created", "name", "dataset",
               "val_loss", "tokens", "aliases");
    for (p = ids.data; p && *p; p += 17) {
        char id[17], names[256];
        fti_json_doc *doc = NULL;
        memcpy(id, p, 16);
        id[16] = 0;
        if (!load_card(home, id, id, &doc)) continue;
        aliases_of(fti_json_root(adoc), id, names, sizeof names);
        if (fti_json_get(fti_json_root(doc), "removed")) /* by gc: only the card is left */
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s(removed %.10s)",
                     names[0] ? " " : "", fti_json_get_str(fti_json_root(doc), "removed", ""));
        {
            const fti_json *c = fti_json_root(doc);
            char vl[32];
            printf("%-16s  %-20s  %-12.12s  %-16.16s  %9s  %10lld  %s\n", id,
                   fti_json_get_str(c, "created", ""), fti_json_get_str(c, "name", ""),
                   fti_json_get_str(c, "dataset", ""), figure(c, "val_loss", "%.4f", vl, 32),
                   (long long)fti_json_get_int(c, "tokens", 0), names);
        }
        fti_json_free(doc);
    }
    fti_json_free(adoc);
    fti_buf_free(&ids);
    fti_buf_free(&al);
    return 0;
}

static int cmd_show(const char *home, const char *ref, int json) {
    char id[17];
    fti_json_doc *doc = NULL;
    fti_buf b;
    fti_error err;
    const fti_json *c, *cfg, *m;
    char f[4][32];
    memset(&b, 0, sizeof(b));
    if (json) {
        if (fti_registry_resolve(home, ref, id, &err) != FTI_OK ||
            fti_registry_card(home, id, &b, &err) != FTI_OK) {
            fprintf(stderr, "fti-registry: %s\n", err.msg);
            return 1;
        }
        fwrite(b.data, 1, b.len, stdout);
        fti_buf_free(&b);
        return 0;
    }
    if (!load_card(home, ref, id, &doc)) return 1;
    c = fti_json_root(doc);
    cfg = fti_json_get(c, "config");
    m = fti_json_get(c, "machine");
    printf("model      %s (%s)\n", id, fti_json_get_str(c, "name", ""));
    printf("created    %s\n", fti_json_get_str(c, "created", ""));
    if (fti_json_get(c, "removed"))
        printf("file       removed by gc (%s): only this card is left\n",
               fti_json_get_str(c, "removed", ""));
    else
        printf("file       %s\n", fti_json_get_str(c, "path", ""));
    printf("sha256     %s\n", fti_json_get_str(c, "sha256", ""));
    printf("parent     %s\n", fti_json_get_str(c, "parent", "(none)"));
    if (fti_json_get(c, "origin"))
        printf("origin     %s from %s (%s weights)\n", fti_json_get_str(c, "origin", ""),
               fti_json_get_str(c, "source", "?"), fti_json_get_str(c, "weight_type", "?"));
    printf("dataset    %s\n", fti_json_get_str(c, "dataset", ""));
    printf("tokenizer  %s\n", fti_json_get_str(c, "tokenizer", ""));
    printf("config     dim %lld, layers %lld, heads %lld/%lld, hidden %lld, context %lld, vocab "
           "%lld, %lld parameters\n",
           (long long)fti_json_get_int(cfg, "dim", 0),
           (long long)fti_json_get_int(cfg, "n_layers", 0),
           (long long)fti_json_get_int(cfg, "n_heads", 0),
           (long long)fti_json_get_int(cfg, "n_kv_heads", 0),
           (long long)fti_json_get_int(cfg, "hidden_dim", 0),
           (long long)fti_json_get_int(cfg, "context_len", 0),
           (long long)fti_json_get_int(cfg, "vocab_size", 0),
           (long long)fti_json_get_int(cfg, "n_params", 0));
    printf("training   %lld steps, %lld tokens, %.1f s, train loss %s\n",
           (long long)fti_json_get_int(c, "steps", 0), (long long)fti_json_get_int(c, "tokens", 0),
           fti_json_get_num(c, "wall_time_s", 0), figure(c, "train_loss", "%.4f", f[0], 32));
    printf("validation loss %s (best %s, perplexity %s)\n",
           figure(c, "val_loss", "%.4f", f[1], 32), figure(c, "best_val_loss", "%.4f", f[2], 32),
           figure(c, "val_perplexity", "%.2f", f[3], 32));
    if (fti_json_get(c, "weights")) /* keep-best: the figures above are the kept pass's */
        printf("weights    %s (the run: %lld steps, %lld tokens, train loss %s)\n",
               fti_json_get_str(c, "weights", ""), (long long)fti_json_get_int(c, "run_steps", 0),
               (long long)fti_json_get_int(c, "run_tokens", 0),
               figure(c, "run_train_loss", "%.4f", f[0], 32));
    if (!m) /* fti-registry merge and add record no machine */
        printf("machine    (not recorded)\n");
    else
        printf("machine    %s %s, %s, %lld threads%s%s%s%s%s%s\n",
               fti_json_get_str(m, "os", ""), fti_json_get_str(m, "arch", ""),
               fti_json_get_str(m, "cpu", ""), (long long)fti_json_get_int(m, "threads", 0),
               fti_json_get(m, "matmul") ? ", " : "", fti_json_get_str(m, "matmul", ""),
               fti_json_get(m, "matmul") ? " matmuls" : "", fti_json_get(m, "kernels") ? ", " : "",
               fti_json_get_str(m, "kernels", ""), fti_json_get(m, "kernels") ? " kernels" : "");
    if (fti_json_get(c, "base_model")) /* a merged model: parent is the adapter */
        printf("base model %s\n", fti_json_get_str(c, "base_model", ""));
    if (fti_json_get(c, "adapter_id") && fti_json_get(c, "adapter"))
        printf("adapter    %s (%s)\n", fti_json_get_str(c, "adapter_id", ""),
               fti_json_get_str(c, "adapter", ""));
    else if (fti_json_get(c, "adapter_id") || fti_json_get(c, "adapter"))
        printf("adapter    %s\n", fti_json_get_str(c, "adapter_id",
                                                    fti_json_get_str(c, "adapter", "")));
    printf("metrics    %s\n", fti_json_get_str(c, "metrics", ""));
    printf("loss curve %s\n", fti_json_get_str(c, "loss_curve", ""));
    fti_json_free(doc);
    return 0;
}

static int cmd_lineage(const char *home, const char *ref) {
    char id[17], seen[64][17];
    int depth = 0;
    char cur[64];
    snprintf(cur, sizeof cur, "%s", ref);
    for (depth = 0; depth < 64; depth++) {
        fti_json_doc *doc = NULL;
        const fti_json *c;
        const char *ds_id, *parent, *type;
        fti_dataset *ds = NULL;
        fti_error err;
        char vl[32];
        int k;
        if (!load_card(home, cur, id, &doc)) return 1;
        for (k = 0; k < depth && strcmp(seen[k], id) != 0; k++) {}
        if (k < depth) { /* a hand-edited card can make a cycle */
            printf("%*s%s (already above: the cards' parents form a cycle)\n", depth * 2, "", id);
            fti_json_free(doc);
            return 1;
        }
        memcpy(seen[depth], id, sizeof id);
        c = fti_json_root(doc);
        ds_id = fti_json_get_str(c, "dataset", "");
        type = fti_json_get_str(c, "type", "model");
        printf("%*s%s %s  %s  val_loss %s  tokens %lld", depth * 2, "",
               !strcmp(type, "lora_adapter") ? "adapter" : "model", id,
               fti_json_get_str(c, "created", ""), figure(c, "val_loss", "%.4f", vl, 32),
               (long long)fti_json_get_int(c, "tokens", 0));
        if (!strcmp(type, "lora_adapter"))
            printf("  LoRA rank %lld, %lld parameters, sha256 %.16s",
                   (long long)fti_json_get_int(c, "lora_rank", 0),
                   (long long)fti_json_get_int(c, "n_params", 0),
                   fti_json_get_str(c, "sha256", ""));
        printf("\n");
        if (!strcmp(fti_json_get_str(c, "origin", ""), "added"))
            printf("%*s  added from %s (%s weights)\n", depth * 2, "",
                   fti_json_get_str(c, "source", "?"), fti_json_get_str(c, "weight_type", "?"));
        if (!*ds_id) {
            printf("%*s  no dataset recorded\n", depth * 2, "");
            ds_id = NULL;
        } else {
            printf("%*s  trained on dataset %s (tokenizer %.16s)\n", depth * 2, "", ds_id,
                   fti_json_get_str(c, "tokenizer", ""));
        }
#ifndef FTI_NO_STORE
        if (ds_id && fti_dataset_open(&ds, home, ds_id, &err) == FTI_OK) {
            const fti_json *src = fti_json_get(fti_dataset_manifest(ds), "sources"), *s;
            for (s = src ? src->child : NULL; s; s = s->next)
                printf("%*s    source %s  %lld bytes  sha256 %.16s  %lld documents\n", depth * 2,
                       "", fti_json_get_str(s, "path", fti_json_get_str(s, "name", "?")),
                       (long long)fti_json_get_int(s, "bytes", 0),
                       fti_json_get_str(s, "sha256", ""),
                       (long long)fti_json_get_int(s, "documents", 0));
            fti_dataset_close(ds);
        } else if (ds_id) {
            printf("%*s    (dataset not in this workspace: %s)\n", depth * 2, "", err.msg);
        }
#else
        (void)ds;
        (void)err;
#endif
        parent = fti_json_get_str(c, "parent", NULL);
        if (!parent || !*parent) {
            fti_json_free(doc);
            return 0;
        }
        printf("%*s  %s\n", depth * 2, "",
               fti_json_get(c, "relation")     ? fti_json_get_str(c, "relation", "")
               : !strcmp(type, "lora_merged")  ? "merged from the LoRA adapter"
               : !strcmp(type, "lora_adapter") ? "trained on the frozen base model"
                                               : "fine-tuned from");
        snprintf(cur, sizeof cur, "%s", parent);
        fti_json_free(doc);
        { /* a parent recorded in an added file may live in another registry */
            fti_error perr;
            char pid[17];
            if (fti_registry_resolve(home, cur, pid, &perr) != FTI_OK) {
                printf("%*s  %s (not in this registry)\n", (depth + 1) * 2, "", cur);
                return 0;
            }
        }
    }
    return 0;
}

static void bad_usage(const char *cmd);

/* add FILE [--alias A] [--name N] [--parent REF] (argv[0] is FILE). The library checks every
 * argument before it writes anything (a bad alias used to leave the model registered). */
static int cmd_add(const char *home, int argc, char **argv) {
    fti_registry_add_opts o;
    char id[17];
    fti_error err;
    fti_buf before;
    int i, known;
    memset(&o, 0, sizeof(o));
    memset(&before, 0, sizeof(before));
    for (i = 1; i < argc; i += 2) {
        const char **slot = strcmp(argv[i], "--alias") == 0    ? &o.alias
                            : strcmp(argv[i], "--name") == 0   ? &o.name
                            : strcmp(argv[i], "--parent") == 0 ? &o.parent
                                                               : NULL;
        if (i + 1 >= argc || !slot || *slot) { /* (an option given twice: which one?) */
            bad_usage("add");
            return 2;
        }
        *slot = argv[i + 1];
    }
    /* the models before, to say whether the file was registered already */
    if (fti_path_is_dir(home) && fti_registry_list(home, &before, &err) != FTI_OK) {
        fprintf(stderr, "fti-registry: %s\n", err.msg);
        return 1;
    }
    if (fti_registry_add_file(home, argv[0], &o, id, &err) != FTI_OK) {
        fprintf(stderr, "fti-registry: %s\n", err.msg);
        fti_buf_free(&before);
        return 1;
    }
    known = 0;
    for (i = 0; before.data && (size_t)i + 17 <= before.len && !known; i += 17)
        known = memcmp(before.data + i, id, 16) == 0;
    fti_buf_free(&before);
    if (o.alias) printf("%s -> %s\n", o.alias, id);
    if (!known) {
        printf("added model %s\n", id);
    } else if (o.name || o.parent) {
        /* the id last, as everywhere (scripts take the last word) */
        printf("its card kept, %s updated: already registered as %s\n",
               o.name && o.parent ? "name and parent" : o.name ? "name" : "parent", id);
    } else {
        printf("already registered as %s\n", id);
    }
    return 0;
}

/* After a merge: the other registered models merged from the same adapter (its training run
 * registers one, a file of the same weights with the run's figures), named on stderr so a second
 * copy is not a surprise. */
typedef struct merged_find {
    const char *adapter, *id; /* the adapter's id, the merge's model */
} merged_find;

static int merged_card(void *user, const char *mid, const fti_json *c) {
    const merged_find *f = (const merged_find *)user;
    if (strcmp(mid, f->id) != 0 && !strcmp(fti_json_get_str(c, "type", ""), "lora_merged") &&
        !strcmp(fti_json_get_str(c, "adapter_id", ""), f->adapter))
        fprintf(stderr, "fti-registry: note: adapter %s is also merged in model %s (%s): the "
                "same weights, another file\n", f->adapter, mid,
                fti_json_get(c, "run") ? "by its training run" : "by an earlier merge");
    return 0;
}

static void merged_elsewhere(const char *home, const char *adapter_ref, const char *id) {
    char aid[17];
    merged_find f;
    if (fti_registry_resolve(home, adapter_ref, aid, NULL) != FTI_OK) return;
    f.adapter = aid;
    f.id = id;
    (void)fti_registry_each(home, merged_card, &f, NULL);
}

/* verify: each registered model's file re-hashed against its card's SHA-256 (the model or
 * adapter file fti_registry_add copied in; cards of models gc removed are skipped). */
typedef struct {
    const char *home;
    const char *only; /* an id, or NULL for all */
    int n_ok, n_bad, n_removed;
} verify_state;

static int verify_card(void *user, const char *id, const fti_json *card) {
    verify_state *v = (verify_state *)user;
    fti_error err;
    if (v->only && strcmp(v->only, id) != 0) return 0;
    if (fti_json_get(card, "removed")) {
        v->n_removed++;
        return 0;
    }
    if (fti_registry_verify(v->home, id, NULL, NULL, &err) != FTI_OK) {
        printf("%s  FAILED  %s\n", id, err.msg);
        v->n_bad++;
    } else {
        printf("%s  ok\n", id);
        v->n_ok++;
    }
    return 0;
}

static int cmd_verify(const char *home, const char *ref) {
    verify_state v;
    char id[17];
    fti_error err;
    memset(&v, 0, sizeof v);
    v.home = home;
    if (ref) {
        if (fti_registry_resolve(home, ref, id, &err) != FTI_OK) {
            fprintf(stderr, "fti-registry: %s\n", err.msg);
            return 1;
        }
        v.only = id;
    }
    if (fti_registry_each(home, verify_card, &v, &err) != FTI_OK) {
        fprintf(stderr, "fti-registry: %s\n", err.msg);
        return 1;
    }
    if (v.n_bad) {
        printf("verify FAILED: %d of %d model file(s) differ from their cards or do not read: "
               "copy HOME/models/<id>/ back from a backup (or `fti-registry rollback ALIAS` "
               "away from a damaged model)\n", v.n_bad, v.n_bad + v.n_ok);
        return 1;
    }
    printf("verify: ok (%d model file(s) match their cards", v.n_ok);
    if (v.n_removed) printf("; %d removed by gc, only their cards are left", v.n_removed);
    printf(")\n");
    return 0;
}

/* The usage, after a line saying what was wrong with the command line. */
static void bad_usage(const char *cmd) {
    static const char *const known[] = {"list", "show", "promote", "rollback", "lineage",
                                        "merge", "add", "verify"};
    size_t k;
    for (k = 0; k < sizeof known / sizeof known[0] && strcmp(cmd, known[k]) != 0; k++) {}
    if (k < sizeof known / sizeof known[0])
        fprintf(stderr, "fti-registry: %s: missing, extra or unknown arguments\n\n", cmd);
    else
        fprintf(stderr, "fti-registry: unknown command '%s'\n\n", cmd);
    usage(stderr);
}

int main(int argc, char **argv) {
    const char *home_arg = NULL, *cmd;
    char *home;
    int i = 1, rc = 2;
    fti_error err;
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--home") == 0) {
        if (argc == 2) {
            fprintf(stderr, "fti-registry: --home needs a directory\n");
            return 2;
        }
        home_arg = argv[2];
        i = 3;
    }
    if (i >= argc) {
        fprintf(stderr, "fti-registry: no command given\n\n");
        usage(stderr);
        return 2;
    }
    home = fti_workspace_resolve(home_arg);
    if (!home) return 1;
    cmd = argv[i++];
    if (strcmp(cmd, "add") && !fti_path_is_dir(home)) { /* a mistyped --home: say so */
        fprintf(stderr, "fti-registry: no workspace at %s (--home DIR or FTI_HOME names it)\n",
                home);
        fti_free(home);
        return 1;
    }
    if (strcmp(cmd, "list") == 0 && i == argc) {
        rc = cmd_list(home);
    } else if (strcmp(cmd, "show") == 0 && i < argc) {
        int json = i + 1 < argc && strcmp(argv[i + 1], "--json") == 0;
        if (i + 1 + json == argc) rc = cmd_show(home, argv[i], json);
        else bad_usage(cmd);
    } else if (strcmp(cmd, "promote") == 0 && i + 2 == argc) {
        char id[17];
        if (fti_registry_promote(home, argv[i], argv[i + 1], &err) != FTI_OK ||
            fti_registry_resolve(home, argv[i + 1], id, &err) != FTI_OK) {
            fprintf(stderr, "fti-registry: %s\n", err.msg);
            rc = 1;
        } else {
            printf("%s -> %s\n", argv[i + 1], id);
            rc = 0;
        }
    } else if (strcmp(cmd, "rollback") == 0 && i + 1 == argc) {
        char id[17];
        if (fti_registry_rollback(home, argv[i], id, &err) != FTI_OK) {
            fprintf(stderr, "fti-registry: %s\n", err.msg);
            rc = 1;
        } else {
            printf("%s -> %s\n", argv[i], id);
            rc = 0;
        }
    } else if (strcmp(cmd, "lineage") == 0 && i + 1 == argc) {
        rc = cmd_lineage(home, argv[i]);
    } else if (strcmp(cmd, "merge") == 0 &&
               (i + 1 == argc || (i + 3 == argc && strcmp(argv[i + 1], "--name") == 0))) {
        char id[17];
        if (fti_train_merge_adapter(home, argv[i], i + 3 == argc ? argv[i + 2] : NULL, id,
                                    &err) != FTI_OK) {
            fprintf(stderr, "fti-registry: %s\n", err.msg);
            rc = 1;
        } else {
            merged_elsewhere(home, argv[i], id);
            printf("merged model %s\n", id);
            rc = 0;
        }
    } else if (strcmp(cmd, "add") == 0 && i < argc) {
        rc = cmd_add(home, argc - i, argv + i);
    } else if (strcmp(cmd, "verify") == 0 && i + 1 >= argc) {
        rc = cmd_verify(home, i < argc ? argv[i] : NULL);
    } else {
        bad_usage(cmd);
    }
    fti_free(home);
    return rc;
}
