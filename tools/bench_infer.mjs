// bench_infer.mjs: the llama.cpp peer of the inference benchmark (node-llama-cpp's prebuilt
// llama.cpp, CPU only). Loads a GGUF written by fti, evaluates the benchmark prompt (the same ids
// as tools/bench_infer.c: 1000 + (i * 7919) % 20000) and decodes N greedy tokens.
//
//   NODE_PATH=$HOME/.cache/fti-bench/infer/node_modules node tools/bench_infer.mjs MODEL \
//       [--threads N] [--prompt-tokens P] [-n N] [--tokens]
//
// Prints one line: load_ms prefill_tps decode_tps ttft_ms threads (and with --tokens the ids);
// load and time to first token count from after node-llama-cpp's own library is loaded.
import { createRequire } from "module";
import path from "path";
const require = createRequire(path.join(process.env.FTI_NODE_MODULES || ".", "x.js"));
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));

const args = process.argv.slice(2);
const modelPath = args[0];
let threads = 1, nPrompt = 128, nGen = 256, printTokens = false;
for (let i = 1; i < args.length; i++) {
    if (args[i] === "--threads") threads = parseInt(args[++i]);
    else if (args[i] === "--prompt-tokens") nPrompt = parseInt(args[++i]);
    else if (args[i] === "-n") nGen = parseInt(args[++i]);
    else if (args[i] === "--tokens") printTokens = true;
}
const prompt = [];

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error,
                               maxThreads: threads });
const t0 = performance.now(); // after the library itself is loaded
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const vocab = model.fileInfo.metadata?.llama?.vocab_size ?? 32000;
for (let i = 0; i < nPrompt; i++) {
    const id = 1000 + ((i * 7919) % 20000);
    prompt.push(vocab >= 21000 ? id : id % (vocab - 16));
}
const ctx = await model.createContext({ contextSize: nPrompt + nGen + 8, batchSize: 512,
                                        threads, sequences: 1 });
const seq = ctx.getSequence();
const tLoad = performance.now();
await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
const tPrefill = performance.now();
// the last prompt token starts the generator, whose first step samples from its logits
const out = [];
let tFirst = 0;
const gen = seq.evaluate(prompt.slice(-1), { temperature: 0 });
for await (const tok of gen) {
    if (out.length === 0) tFirst = performance.now();
    out.push(tok);
    if (out.length >= nGen) break;
}
const tEnd = performance.now();
console.log(`load_ms=${(tLoad - t0).toFixed(2)} prefill_tps=${((nPrompt - 1) / ((tPrefill - tLoad) / 1e3)).toFixed(1)} ` +
            `decode_tps=${((out.length - 1) / ((tEnd - tFirst) / 1e3)).toFixed(2)} ` +
            `ttft_ms=${(tFirst - t0).toFixed(2)} threads=${threads}`);
if (printTokens) console.log("tokens " + out.join(" "));
await ctx.dispose();
await model.dispose();
await llama.dispose();
