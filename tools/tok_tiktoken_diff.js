// tok_tiktoken_diff.js: random tricky strings and npm tiktoken's ids for them (gpt2, cl100k_base,
// o200k_base), for tools/tok_tiktoken_diff.c; run by make bench-tokenizer.
//   NODE_PATH=<cache>/node_modules node tools/tok_tiktoken_diff.js OUT_JSON N
const fs = require('fs');
const { get_encoding } = require('tiktoken');
const pool = [' ', '  ', '\n', '\r', '\r\n', '\t', '\u000b', '\u000c', '\u00a0', '\u3000', '\u2028', '\u0085', '\ufeff',
  'a', 'b', 'Z', 'Q', 'ab', 'The', 'the', ' the', 'HTTP', 'ing', "'", "'s", "'S", "'re", "'RE", "'ll", "'LL", "'d", "'t", "'m", "'ve", '\u017f',
  '0', '1', '12', '1234', '\u0663', '\u00b2', '\u00bd', '\u216b', '!', '?', '.', ',', '/', '//', '-', '_', '#', '(', ')', '...', '",',
  '\u00e9', '\u00c9', '\u00df', '\u01c5', '\u02b0', '\u02c6', '\u65e5', '\u672c', '\u30a2', '\uff76', '\ud55c', '\u0434', '\u0414',
  '\u03b1', '\u03a9', '\u0627', '\u05e9', '\u0301', '\u0308', '\u093f', '\u20dd', '\ud83d\ude00', '\u200d', '\ufe0f', '\u00ad',
  '\u0000', '\u0130', '\u0131', '\ufb01', '\u1f88', '\ua66e', '\ud835\udd73', '\ud80c\udc00', '\u0345', '\u01c8', '\u02bc',
  '\ud83c\uddfa\ud83c\uddf8', '\u4e2d\u6587', 'caf\u00e9', 'na\u00efve', '  \n  ', '\u2014', '\u201c', '\u2019s'];
let seed = 777;
function rnd(k) { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % k; }
const encs = {}; for (const n of ['gpt2', 'cl100k_base', 'o200k_base']) encs[n] = get_encoding(n);
const out = [];
for (let i = 0; i < +process.argv[3]; i++) {
  let s = ''; const len = 1 + rnd(30);
  for (let k = 0; k < len; k++) s += pool[rnd(pool.length)];
  const rec = { text: s };
  for (const n in encs) rec[n] = Array.from(encs[n].encode_ordinary(s));
  out.push(rec);
}
fs.writeFileSync(process.argv[2], JSON.stringify(out));
