# mk/tokenizer.mk: the tokenizer's benchmark (part 03). See tools/bench_tokenizer.sh.
.PHONY: bench-tokenizer
BENCH_TARGETS += bench-tokenizer

bench-tokenizer: $(B)/fti-tok
	B=$(B) CC=$(CC) sh tools/bench_tokenizer.sh

# Differential check of the hand-written split patterns against JavaScript's RegExp engine
# running the same patterns (needs node; skipped without it).
.PHONY: check-tokenizer-pretok
CHECK_TARGETS += check-tokenizer-pretok
$(B)/tok_pretok_diff: tools/tok_pretok_diff.c fti.h | $(B)
	$(CC) $(STD) $(OPT) $(WARN) $(CFLAGS) -I. -o $@ $< $(LDLIBS)

check-tokenizer-pretok: $(B)/tok_pretok_diff
	@enc=$${FTI_DATA:-../shared/data}/tokenizers/tiktoken/encodings.json; \
	if ! command -v node >/dev/null 2>&1; then echo "check-tokenizer-pretok: skipped (no node)"; \
	elif [ ! -f $$enc ]; then echo "check-tokenizer-pretok: skipped ($$enc not found)"; \
	else node tools/tok_pretok_diff.js $$enc $(B)/tok_pretok_ref.json 20000 && \
	  ./$(B)/tok_pretok_diff $(B)/tok_pretok_ref.json; fi
