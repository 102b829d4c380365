# mk/coverage.mk: line coverage of the test suite per src/ part (make coverage).
# The header is amalgamated with #line directives, so gcov attributes lines to src/NN_*.c.
#   make coverage                     the whole suite; per part, then per parser/commit group
#   make coverage COV_TESTS="gguf_ store_"   only the tests matching these filters (quicker)
# The groups (issue 10: parsers and commit code >= 90%) sum the lines of the functions whose
# names match each pattern below (gcov -f), into build/cov/groups.txt.
COV_TESTS ?=
COV_GROUPS := \
  "gguf-reader=^fti__gguf_(parse|read|str|kv|arr|name|check)|^fti_gguf_(open|open_memory|llama_config|find|kv_at|tensor_at|find_tensor|arr_str|arr_num|kv_num)$$" \
  "json=^fti_json_parse$$|^fti__json_(parse|value|string|number|lit|skip|push|node|ws|hex|utf8|obj|arr)" \
  "http=^fti_http_(parse_head|parse_request|chunked_feed|head_field)$$|^fti__http_|^fti__hexval$$" \
  "api-request=^fti_api_parse_completion$$|^fti__api_(bad|num|int|content|render_chat)$$" \
  "csv=^fti__st_(csv_record|ingest_csv)$$" \
  "mail=^fti__st_(mail_|ingest_mail|mbox_starts|qp_decode|b64_decode|rfc2047|charset_convert)" \
  "registry=^fti_registry_|^fti__reg_" \
  "sampler=^fti_sampler_|^fti__sampler_" \
  "store-commit=^fti_store_ingest$$|^fti__st_(ingest_run|put_object|stash|write_ref|read_ref|walk_cb|make_units|add_unit|phase_|exact_dups|reuse|ser_run|ser_task|chunk_task)"

.PHONY: coverage
coverage: $(B)/amalgamate $(B)/tests_gen.c
	@mkdir -p $(B)/cov
	$(B)/amalgamate --lines -o $(B)/cov/fti.h src
	gcc -std=c99 -O0 -g --coverage -DFTI_TEST_HEADER='"../$(B)/cov/fti.h"' -I$(B) -Itests \
	    -o $(B)/cov/fti-test tests/main.c -lm -lpthread
	rm -f $(B)/cov/*.gcda; ./$(B)/cov/fti-test $(COV_TESTS) > $(B)/cov/test.log 2>&1; tail -1 $(B)/cov/test.log
	cd $(B)/cov && gcov -o . fti-test-main.gcda > gcov.txt 2>&1 || true
	cd $(B)/cov && gcov -f -n -o . fti-test-main.gcda > gcov-f.txt 2>&1 || true
	@awk '/^File .*src\//{f=$$2} /^Lines executed/{if(f!=""){print f, $$0; f=""}}' $(B)/cov/gcov.txt | \
	    sed "s/'//g; s/Lines executed://" | sort | tee $(B)/cov/summary.txt
	@: > $(B)/cov/groups.txt; for g in $(COV_GROUPS); do \
	  awk -v name="$${g%%=*}" -v re="$${g#*=}" ' \
	    /^Function /{fn=$$2; gsub("\047","",fn); next} \
	    /^Lines executed:/ && fn!="" { if (fn ~ re && !(fn in seen)) { seen[fn]=1; \
	        split($$2,a,"%"); sub("executed:","",a[1]); n=$$NF; \
	        hit+=a[1]*n/100; tot+=n; nf++ } fn="" } \
	    END { if (tot) printf "%-14s %6.2f%% of %5d lines in %3d functions\n", name, 100*hit/tot, tot, nf; \
	          else printf "%-14s no matching functions\n", name }' $(B)/cov/gcov-f.txt; \
	done | tee $(B)/cov/groups.txt
