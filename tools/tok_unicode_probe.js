// tok_unicode_probe.js: asks npm tiktoken how its regexes class code points that Python's
// unicodedata (the source of src/03_tables.c) does not know, and prints the result as the
// TIKTOKEN_ADDITIONS list of tools/gen_unicode_tables.py.
//   /usr/bin/python3 -c 'import unicodedata as u; print("\n".join(str(c) for c in range(0x40000)
//       if u.category(chr(c)) == "Cn" and not 0xD800 <= c <= 0xDFFF))' > /tmp/cn.txt
//   NODE_PATH=$HOME/.cache/fti-bench/node_modules node tools/tok_unicode_probe.js /tmp/cn.txt
// Probes (pre-token boundaries are visible through BPE merges of the ASCII neighbours):
//   gpt2   ch + "'s"   ends in the token "'s" iff ch is a letter or number (else "'" joins ch)
//   o200k  ch + "'s"   ends in "'s" iff ch is a letter, mark or number
//   cl100k ch + "123"  ends in "123" unless ch is a number (\p{N}{1,3} takes ch12)
// Letters are then split into Lu/Ll/Lt/Lm/Lo by node's own RegExp tables where they know the
// code point, else Lo (the case classes only matter to o200k, between letters).
const fs = require('fs');
const { get_encoding } = require('tiktoken');
const cps = fs.readFileSync(process.argv[2], 'utf8').trim().split('\n').map(Number);
const g = get_encoding('gpt2'), o = get_encoding('o200k_base'), c = get_encoding('cl100k_base');
const one = (e, s) => { const t = Array.from(e.encode_ordinary(s)); if (t.length !== 1) throw s; return t[0]; };
const gs = one(g, "'s"), os = one(o, "'s"), c123 = one(c, '123');
const last = (e, s) => { const t = e.encode_ordinary(s); return t[t.length - 1]; };
const sub = [['LU', /\p{Lu}/u], ['LL', /\p{Ll}/u], ['LT', /\p{Lt}/u], ['LM', /\p{Lm}/u], ['LO', /\p{Lo}/u]];
const ranges = [];
for (const cp of cps) {
  const ch = String.fromCodePoint(cp);
  const gLN = last(g, ch + "'s") === gs, oLMN = last(o, ch + "'s") === os;
  let cls = null;
  if (gLN && oLMN) {
    if (last(c, ch + '123') !== c123) cls = 'N';
    else { cls = 'LO'; for (const [k, re] of sub) if (re.test(ch)) { cls = k; break; } }
  } else if (oLMN) cls = 'M';
  if (!cls) continue;
  const r = ranges[ranges.length - 1];
  if (r && r[1] === cp - 1 && r[2] === cls) r[1] = cp; else ranges.push([cp, cp, cls]);
}
const hex = (v) => '0x' + v.toString(16).toUpperCase().padStart(4, '0');
console.log('TIKTOKEN_ADDITIONS = [');
let line = '   ';
for (const [a, b, k] of ranges) {
  const item = ` (${hex(a)}, ${hex(b)}, ${k}),`;
  if (line.length + item.length > 99) { console.log(line); line = '   '; }
  line += item;
}
console.log(line + '\n]');
