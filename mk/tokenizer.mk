# mk/tokenizer.mk: the tokenizer's benchmark (part 03). See tools/bench_tokenizer.sh.
.PHONY: bench-tokenizer
BENCH_TARGETS += bench-tokenizer

bench-tokenizer: $(B)/fti-tok
	B=$(B) sh tools/bench_tokenizer.sh
