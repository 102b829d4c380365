# mk/twin.mk: `make eval` — is the production model a twin of its author? (tools/fti-eval.c)
.PHONY: eval
eval: $(B)/fti-eval
	./$(B)/fti-eval --home $${FTI_HOME:-./twin}

# `make docs`: regenerate docs/api.md from the part headers.
.PHONY: docs
docs:
	sh tools/gen_api.sh > docs/api.md.tmp && mv docs/api.md.tmp docs/api.md
