/* serve_register.c: registers a GGUF file in a workspace's model registry and prints its id, for
 * `make test-replicas` (which needs two registered models without training them).
 *
 *     build/serve_register HOME MODEL.gguf [NAME]
 *
 * The card is {"name": NAME, "kind": "test"}. Promote with fti-registry promote ID ALIAS.
 */
#define FTI_IMPLEMENTATION
#include "fti.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
#if defined(FTI_TRAIN_H) && !defined(FTI_NO_TRAIN)
    char id[17], card[256];
    fti_error err;
    fti_buf esc;
    if (argc < 3) {
        fprintf(stderr, "usage: serve_register HOME MODEL.gguf [NAME]\n");
        return 2;
    }
    memset(&esc, 0, sizeof esc);
    fti_json_escape(&esc, argc > 3 ? argv[3] : "test", strlen(argc > 3 ? argv[3] : "test"));
    snprintf(card, sizeof card, "{\"name\":%.200s,\"kind\":\"test\"}",
             esc.data ? esc.data : "\"\"");
    fti_buf_free(&esc);
    if (fti_registry_add(argv[1], argv[2], card, strlen(card), id, &err) != FTI_OK) {
        fprintf(stderr, "serve_register: %s\n", err.msg);
        return 1;
    }
    printf("%s\n", id);
    return 0;
#else
    (void)argc;
    (void)argv;
    fprintf(stderr, "serve_register: built without the registry (part 07)\n");
    return 1;
#endif
}
