# mk/twin.mk: `make eval` — is the production model a twin of its author? (tools/fti-eval.c)
.PHONY: eval
eval: $(B)/fti-eval
	./$(B)/fti-eval --home $${FTI_HOME:-./twin}
