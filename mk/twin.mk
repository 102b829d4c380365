# mk/twin.mk: `make eval` — is the production model a twin of its author? (tools/fti-eval.c)
.PHONY: eval
eval: $(B)/fti-eval
	./$(B)/fti-eval --home $${FTI_HOME:-./twin}

# `make docs`: regenerate docs/api.md from the part headers.
.PHONY: docs
docs:
	sh tools/gen_api.sh > docs/api.md.tmp && mv docs/api.md.tmp docs/api.md

# `make check-readme`: every command README.md shows, run as printed in a scratch directory
# (tools/check_readme.sh; make demo and make test are skipped unless CHECK_README_ALL=1).
README_PROGS := fti-twin fti-feature fti-train fti-registry fti-infer fti-quantize fti-serve fti-monitor fti-loadgen
.PHONY: check-readme
check-readme: fti.h $(patsubst %,$(B)/%,$(README_PROGS))
	sh tools/check_readme.sh
