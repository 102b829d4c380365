// bench_tokenizer.js: times npm tiktoken (WASM) encode_ordinary on one file, for `make bench-tokenizer`.
//   NODE_PATH=<cache>/node_modules node tools/bench_tokenizer.js ENCODING FILE [IDS_OUT]
// Prints "<bytes> <tokens> <seconds>" (best of 2 runs after a warm-up); writes the ids to IDS_OUT
// (space-separated, one line) so the benchmark can check fti's ids against tiktoken's.
const fs = require('fs');
const { get_encoding } = require('tiktoken');
const [, , encName, file, idsOut] = process.argv;
const text = fs.readFileSync(file, 'utf8');
const enc = get_encoding(encName);
enc.encode_ordinary(text.slice(0, 200000));
let best = Infinity, ids = null;
for (let r = 0; r < 2; r++) {
  const t0 = process.hrtime.bigint();
  ids = enc.encode_ordinary(text);
  const t1 = process.hrtime.bigint();
  best = Math.min(best, Number(t1 - t0) / 1e9);
}
if (idsOut) fs.writeFileSync(idsOut, Array.from(ids).join(' ') + '\n');
console.log(`${Buffer.byteLength(text, 'utf8')} ${ids.length} ${best}`);
enc.free();
