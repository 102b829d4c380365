// tok_pretok_diff.js: a differential check of fti's hand-written split patterns (make
// check-tokenizer-pretok). Generates random strings from a pool of tricky pieces and splits them
// with the JavaScript-RegExp forms of the gpt2, cl100k_base and o200k_base patterns (js_pat_str in
// encodings.json); tools/tok_pretok_diff.c compares fti_pretok_next with the result.
//   node tools/tok_pretok_diff.js ENCODINGS_JSON OUT_JSON [N]
// JavaScript's \s differs from tiktoken's (Rust regex, Unicode White_Space) on U+FEFF (space in
// JS only) and U+0085 (space in Rust only), so the pool leaves both out (the golden tests cover
// U+0085). Long s (U+017F) is left out too: Rust's (?i) matches it to 's', the JS form does not.
const fs = require('fs');
const enc = JSON.parse(fs.readFileSync(process.argv[2])).encodings;
const n = parseInt(process.argv[4] || '20000', 10);
const pool = [' ', '  ', '\n', '\r', '\r\n', '\t', '\u000b', '\u000c', '\u00a0', '\u3000', '\u2028',
  'a', 'b', 'Z', 'Q', 'ab', 'The', 'HTTP', "'", "'s", "'S", "'re", "'RE", "'ll", "'LL", "'d", "'t",
  "'m", "'ve", '0', '1', '12', '1234', '\u0663', '\u00b2', '\u00bd', '\u216b', '!', '?', '.', ',',
  '/', '//', '-', '_', '#', '(', ')', '\u00e9', '\u00c9', '\u00df', '\u01c5', '\u02b0', '\u02c6',
  '\u65e5', '\u672c', '\u30a2', '\uff76', '\ud55c', '\u0434', '\u0414', '\u03b1', '\u03a9',
  '\u0627', '\u05e9', '\u0301', '\u0308', '\u093f', '\u20dd', '\ud83d\ude00', '\u200d', '\ufe0f',
  '\u00ad', '\u0000', '\u0130', '\u0131', '\ufb01', '\u1f88', '\ua66e', '\ud835\udd73',
  '\ud835\udd8a', '\ud80c\udc00', '\u0345', '\u01c8', '\u02bc', '\ua78c'];
let seed = 12345;
function rnd(k) { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % k; }
const out = [];
for (let i = 0; i < n; i++) {
  let s = '';
  const len = 1 + rnd(24);
  for (let k = 0; k < len; k++) s += pool[rnd(pool.length)];
  const rec = { text: s };
  for (const name of ['gpt2', 'cl100k_base', 'o200k_base']) {
    const pieces = s.match(new RegExp(enc[name].js_pat_str, 'gu')) || [];
    rec[name] = pieces.join('') === s ? pieces.map(p => Buffer.byteLength(p, 'utf8')) : null;
  }
  out.push(rec);
}
fs.writeFileSync(process.argv[3], JSON.stringify(out));
