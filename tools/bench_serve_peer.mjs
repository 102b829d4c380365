// bench_serve_peer.mjs: the llama.cpp peer of `make bench-serve`. node-llama-cpp 3.21.1 ships
// llama.cpp as a node addon, not its `llama-server` program, so this is a small node HTTP server
// over node-llama-cpp's API: POST /v1/completions with the OpenAI request and response shapes
// (the fields fti-loadgen sends and reads). Concurrent requests get their own sequence of one
// llama.cpp context, and node-llama-cpp evaluates the pending tokens of all sequences in one
// llama_decode batch per step: llama.cpp's own continuous batching, as in llama-server.
// Requests beyond the sequence count wait (up to --max-queue, then 503).
//
//   FTI_NODE_MODULES=$HOME/.cache/fti-bench/infer/node_modules node tools/bench_serve_peer.mjs \
//       MODEL [--port P] [--port-file FILE] [--threads N] [--sequences S] [--ctx N] [--max-queue Q]
//
// Name it in results as "llama.cpp via node-llama-cpp, node http".
import { createRequire } from "module";
import path from "path";
import fs from "fs";
import http from "http";
const require = createRequire(path.join(process.env.FTI_NODE_MODULES || ".", "x.js"));
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));

const args = process.argv.slice(2);
const modelPath = args[0];
let port = 0, portFile = null, threads = 2, nSeq = 64, nCtx = 256, maxQueue = 256;
for (let i = 1; i < args.length; i++) {
    if (args[i] === "--port") port = parseInt(args[++i]);
    else if (args[i] === "--port-file") portFile = args[++i];
    else if (args[i] === "--threads") threads = parseInt(args[++i]);
    else if (args[i] === "--sequences") nSeq = parseInt(args[++i]);
    else if (args[i] === "--ctx") nCtx = parseInt(args[++i]);
    else if (args[i] === "--max-queue") maxQueue = parseInt(args[++i]);
}

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error,
                               maxThreads: threads });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const ctx = await model.createContext({ contextSize: nCtx, sequences: nSeq, threads,
                                        batchSize: Math.max(512, nSeq) });
const free = [];
for (let i = 0; i < nSeq; i++) free.push(ctx.getSequence());
const waiters = [];
const acquire = () => free.length ? Promise.resolve(free.pop())
                                  : new Promise((resolve) => waiters.push(resolve));
const release = (s) => { if (waiters.length) waiters.shift()(s); else free.push(s); };
let nextId = 1;

function send(res, status, obj) {
    const body = JSON.stringify(obj);
    res.writeHead(status, { "Content-Type": "application/json",
                            "Content-Length": Buffer.byteLength(body) });
    res.end(body);
}
const error = (res, status, msg) =>
    send(res, status, { error: { message: msg, type: "invalid_request_error", param: null, code: null } });

async function complete(req, res, body) {
    let q;
    try { q = JSON.parse(body); } catch { return error(res, 400, "invalid JSON"); }
    if (typeof q.prompt !== "string") return error(res, 400, "prompt must be a string");
    const maxTokens = q.max_tokens ?? 16, temperature = q.temperature ?? 1;
    if (!Number.isInteger(maxTokens) || maxTokens < 1 || !(temperature >= 0))
        return error(res, 400, "bad max_tokens or temperature");
    const prompt = model.tokenize(q.prompt);
    if (prompt.length === 0 || prompt.length + maxTokens > nCtx)
        return error(res, 400, "prompt + max_tokens exceed the context");
    if (free.length === 0 && waiters.length >= maxQueue) return error(res, 503, "queue full");
    const seq = await acquire();
    const out = [];
    let finish = "length";
    try {
        await seq.clearHistory();
        const opts = { temperature };
        if (Number.isInteger(q.seed)) opts.seed = q.seed;
        for await (const tok of seq.evaluate(prompt, opts)) {
            if (model.isEogToken(tok)) { finish = "stop"; break; }
            out.push(tok);
            if (out.length >= maxTokens) break;
        }
    } catch (e) {
        release(seq);
        return error(res, 500, String(e));
    }
    release(seq);
    send(res, 200, {
        id: "cmpl-" + (nextId++), object: "text_completion", created: Math.floor(Date.now() / 1000),
        model: path.basename(modelPath),
        choices: [{ index: 0, text: model.detokenize(out), logprobs: null, finish_reason: finish }],
        usage: { prompt_tokens: prompt.length, completion_tokens: out.length,
                 total_tokens: prompt.length + out.length },
    });
}

const server = http.createServer((req, res) => {
    if (req.method === "POST" && req.url === "/v1/completions") {
        const parts = [];
        req.on("data", (c) => parts.push(c));
        req.on("end", () => { complete(req, res, Buffer.concat(parts).toString("utf8")); });
    } else if (req.method === "GET" && req.url === "/health") {
        send(res, 200, { status: "ok" });
    } else {
        error(res, 404, "not found");
    }
});
server.keepAliveTimeout = 15000;
server.maxConnections = 1024;
server.listen(port, "127.0.0.1", () => {
    if (portFile) fs.writeFileSync(portFile, server.address().port + "\n");
});
const stop = () => server.close(async () => {
    await ctx.dispose(); await model.dispose(); await llama.dispose(); process.exit(0);
});
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
