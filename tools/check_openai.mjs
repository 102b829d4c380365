// check_openai.mjs: `make check-openai`. fti-serve as users of the official OpenAI client library
// (the `openai` npm package) see it: the script points the SDK at a running server and goes
// through what they call: models.list/retrieve, chat and text completions with and without
// stream (SSE), the usage chunk, stop strings, max_tokens / max_completion_tokens, seed and
// temperature 0 determinism, presence/frequency penalties, logprobs (both endpoints, streamed
// too) and logit_bias (a banned token gives way to its runner-up), n (streamed too), best_of,
// echo, unknown extra fields, and errors
// (a bad request must surface as the SDK's APIError subclass with status 400, not as a crash or a
// hang). One line per check, "ok" or "FAIL" and a detail; the exit status is 1 when a check
// failed, 2 when the SDK cannot be loaded.
//
//   FTI_NODE_MODULES=$HOME/.cache/fti-bench/openai/node_modules \
//       node tools/check_openai.mjs http://127.0.0.1:PORT/v1
//
// The package is installed outside the repository:
//   mkdir -p ~/.cache/fti-bench/openai && cd ~/.cache/fti-bench/openai && \
//       npm install --no-audit --no-fund openai
// The checks hold for any model (they compare the server with itself), so a tiny one does.
import { createRequire } from "module";
import fs from "fs";
import os from "os";
import path from "path";
import { pathToFileURL } from "url";

const baseURL = process.argv[2];
if (!baseURL) {
    console.error("usage: node tools/check_openai.mjs BASE_URL (e.g. http://127.0.0.1:8080/v1)");
    process.exit(2);
}
const modules = process.env.FTI_NODE_MODULES ||
    path.join(os.homedir(), ".cache", "fti-bench", "openai", "node_modules");
let OpenAI, sdkVersion = "?";
try {
    const require = createRequire(path.join(modules, "x.js"));
    const entry = require.resolve("openai");
    const m = await import(pathToFileURL(entry).href);
    OpenAI = m.OpenAI || (m.default && m.default.OpenAI) || m.default;
    sdkVersion = JSON.parse(fs.readFileSync(path.join(path.dirname(entry), "package.json"),
                                            "utf8")).version;
} catch (e) {
    console.error(`check-openai: cannot load the openai package from ${modules}: ${e.message}`);
    process.exit(2);
}

// The SDK's own defaults (2 retries on 408/429/5xx and connection errors, its headers), except a
// timeout a hang cannot outlast.
const client = new OpenAI({ baseURL, apiKey: "x", timeout: 60000 });
const TIMEOUT_MS = 90000;
let failed = 0, passed = 0;

function fail(msg) { throw new Error(msg); }
function expect(cond, msg) { if (!cond) fail(msg); }

// Runs one check: fn returns a detail text or throws. A check that neither ends nor throws within
// TIMEOUT_MS fails as a hang.
async function check(name, fn) {
    let timer;
    const hang = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${TIMEOUT_MS} ms`)),
                           TIMEOUT_MS);
    });
    try {
        const detail = await Promise.race([fn(), hang]);
        console.log(`ok    ${name}${detail ? ": " + detail : ""}`);
        passed++;
    } catch (e) {
        const what = e instanceof OpenAI.APIError
            ? `${e.constructor.name} status ${e.status}: ${e.message}` : (e.stack || String(e));
        console.log(`FAIL  ${name}: ${what}`);
        failed++;
    } finally {
        clearTimeout(timer);
    }
}

// Expects promise (a call) to fail as the SDK's error class cls with HTTP status; returns the
// error. The message must name something, and param (if given) the offending parameter.
async function expectError(promiseFn, cls, status, param) {
    let err = null;
    try {
        const r = await promiseFn();
        if (r && typeof r[Symbol.asyncIterator] === "function") for await (const _ of r) { /**/ }
    } catch (e) {
        err = e;
    }
    expect(err, `no error (want ${cls.name} ${status})`);
    if (!(err instanceof cls))
        fail(`got ${err.constructor.name} (${err.message}), want ${cls.name}`);
    expect(err instanceof OpenAI.APIError, "not an APIError");
    expect(err.status === status, `status ${err.status}, want ${status}`);
    expect(typeof err.message === "string" && err.message.length > 4, "no message");
    expect(err.error && typeof err.error.message === "string", "no error.message in the body");
    if (param !== undefined) expect(err.param === param, `param ${err.param}, want ${param}`);
    return err;
}

const chatMsgs = [{ role: "user", content: "On politics" }];
let modelId = null;

function checkUsage(u, maxCompletion) {
    expect(u && Number.isInteger(u.prompt_tokens) && u.prompt_tokens > 0, "usage.prompt_tokens");
    expect(Number.isInteger(u.completion_tokens) && u.completion_tokens >= 0,
           "usage.completion_tokens");
    expect(u.total_tokens === u.prompt_tokens + u.completion_tokens, "usage.total_tokens");
    if (maxCompletion) expect(u.completion_tokens <= maxCompletion,
                              `completion_tokens ${u.completion_tokens} > ${maxCompletion}`);
}

function checkFinish(f) {
    expect(f === "stop" || f === "length", `finish_reason ${JSON.stringify(f)}`);
}

// A streamed chat completion: the joined deltas, the finish reason, the usage chunk (if any) and
// how many chunks came.
async function chatStream(params) {
    const stream = await client.chat.completions.create({ ...params, stream: true });
    let text = "", finish = null, usage = null, n = 0, role = null, id = null;
    for await (const ch of stream) {
        n++;
        expect(ch.object === "chat.completion.chunk", `chunk object ${ch.object}`);
        expect(typeof ch.id === "string" && ch.id.startsWith("chatcmpl-"), `chunk id ${ch.id}`);
        if (id === null) id = ch.id;
        expect(ch.id === id, "chunk ids differ within one stream");
        expect(Array.isArray(ch.choices), "chunk without choices array");
        if (ch.usage) {
            expect(ch.choices.length === 0, "the usage chunk has choices");
            usage = ch.usage;
            continue;
        }
        expect(ch.choices.length === 1 && ch.choices[0].index === 0, "choices[0].index");
        expect(finish === null, "a chunk after the one with finish_reason");
        const d = ch.choices[0].delta;
        expect(d && typeof d === "object", "chunk without delta");
        if (d.role) role = d.role;
        if (d.content) text += d.content;
        if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
    }
    expect(role === "assistant", `delta.role ${role}`);
    return { text, finish, usage, n };
}

async function textStream(params) {
    const stream = await client.completions.create({ ...params, stream: true });
    let text = "", finish = null, usage = null, n = 0;
    for await (const ch of stream) {
        n++;
        expect(ch.object === "text_completion", `chunk object ${ch.object}`);
        if (ch.usage) {
            expect(ch.choices.length === 0, "the usage chunk has choices");
            usage = ch.usage;
            continue;
        }
        expect(ch.choices.length === 1 && typeof ch.choices[0].text === "string",
               "choices[0].text");
        text += ch.choices[0].text;
        if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
    }
    return { text, finish, usage, n };
}

async function chatText(params) {
    const r = await client.chat.completions.create(params);
    return r.choices[0].message.content;
}

const show = (s) => JSON.stringify(s.length > 40 ? s.slice(0, 40) + "…" : s);

console.log(`check-openai: openai ${sdkVersion} (node ${process.version}) against ${baseURL}`);

await check("models.list", async () => {
    const page = await client.models.list();
    const ids = [];
    for await (const m of page) {
        expect(m.object === "model" && typeof m.id === "string" && m.id, "model entry");
        expect(Number.isInteger(m.created), "model.created");
        expect(typeof m.owned_by === "string", "model.owned_by");
        ids.push(m.id);
    }
    expect(ids.length >= 1, "no models");
    modelId = ids[0];
    return `${ids.length} model(s), ${modelId}`;
});

await check("models.retrieve", async () => {
    const m = await client.models.retrieve(modelId || "x");
    expect(m.id === modelId && m.object === "model", `got ${JSON.stringify(m)}`);
    await expectError(() => client.models.retrieve("no-such-model"), OpenAI.NotFoundError, 404);
    return `${m.id}; an unknown id is NotFoundError 404`;
});

await check("chat.completions.create", async () => {
    const r = await client.chat.completions.create({ model: modelId, messages: chatMsgs,
                                                     max_tokens: 12 });
    expect(r.object === "chat.completion", `object ${r.object}`);
    expect(r.id.startsWith("chatcmpl-"), `id ${r.id}`);
    expect(Number.isInteger(r.created) && r.created > 1.6e9, `created ${r.created}`);
    expect(typeof r.model === "string", "model");
    expect(r.choices.length === 1 && r.choices[0].index === 0, "choices");
    const m = r.choices[0].message;
    expect(m.role === "assistant" && typeof m.content === "string", "message");
    checkFinish(r.choices[0].finish_reason);
    checkUsage(r.usage, 12);
    return `${show(m.content)} (${r.usage.completion_tokens} tokens, ` +
        `${r.choices[0].finish_reason})`;
});

await check("chat.completions.create stream + include_usage", async () => {
    const s = await chatStream({ model: modelId, messages: chatMsgs, max_tokens: 12, seed: 7,
                                 stream_options: { include_usage: true } });
    checkFinish(s.finish);
    expect(s.usage, "no usage chunk");
    checkUsage(s.usage, 12);
    const r = await client.chat.completions.create({ model: modelId, messages: chatMsgs,
                                                     max_tokens: 12, seed: 7 });
    expect(r.choices[0].message.content === s.text,
           `stream ${show(s.text)} != non-stream ${show(r.choices[0].message.content)}`);
    expect(r.usage.completion_tokens === s.usage.completion_tokens, "usage differs");
    return `${s.n} chunks, ${show(s.text)}, usage ${s.usage.completion_tokens} tokens, ` +
        "same text as non-streaming";
});

await check("chat.completions.create stream without usage", async () => {
    const s = await chatStream({ model: modelId, messages: chatMsgs, max_tokens: 4 });
    checkFinish(s.finish);
    expect(s.usage === null, "a usage chunk that was not asked for");
    return `${s.n} chunks, finish_reason ${s.finish}`;
});

await check("chat.completions.stream helper", async () => {
    const stream = client.chat.completions.stream({ model: modelId, messages: chatMsgs,
                                                    max_tokens: 8, seed: 3,
                                                    stream_options: { include_usage: true } });
    let deltas = "";
    stream.on("content", (d) => { deltas += d; });
    const fin = await stream.finalChatCompletion();
    expect(fin.choices[0].message.content === deltas, "final content != joined deltas");
    checkFinish(fin.choices[0].finish_reason);
    checkUsage(fin.usage, 8);
    return `finalChatCompletion ${show(deltas)}`;
});

await check("completions.create", async () => {
    const r = await client.completions.create({ model: modelId, prompt: "LAWYER, n.",
                                                max_tokens: 10 });
    expect(r.object === "text_completion", `object ${r.object}`);
    expect(r.id.startsWith("cmpl-"), `id ${r.id}`);
    expect(r.choices.length === 1 && typeof r.choices[0].text === "string", "choices[0].text");
    checkFinish(r.choices[0].finish_reason);
    checkUsage(r.usage, 10);
    return `${show(r.choices[0].text)} (${r.choices[0].finish_reason})`;
});

await check("completions.create stream + include_usage", async () => {
    const p = { model: modelId, prompt: "LAWYER, n.", max_tokens: 10, seed: 11 };
    const s = await textStream({ ...p, stream_options: { include_usage: true } });
    checkFinish(s.finish);
    expect(s.usage, "no usage chunk");
    checkUsage(s.usage, 10);
    const r = await client.completions.create(p);
    expect(r.choices[0].text === s.text,
           `stream ${show(s.text)} != non-stream ${show(r.choices[0].text)}`);
    return `${s.n} chunks, same text as non-streaming`;
});

await check("stop", async () => {
    // the same seed gives the same tokens, so a stop string taken from the middle of a free run
    // must cut that run exactly where the string first appears
    const p = { messages: chatMsgs, max_tokens: 24, temperature: 1, seed: 42 };
    const free = await chatText(p);
    const cps = [...free];
    const at = Math.floor(cps.length / 2);
    expect(cps.length >= 4, `the free run ${show(free)} is too short`);
    const stop = cps.slice(at, at + 2).join("");
    const want = free.slice(0, free.indexOf(stop));
    const r = await client.chat.completions.create({ ...p, stop: [stop, "\u0001never"] });
    const t = r.choices[0].message.content;
    expect(t === want, `stop ${JSON.stringify(stop)}: ${show(t)}, want ${show(want)}`);
    expect(r.choices[0].finish_reason === "stop", `finish_reason ${r.choices[0].finish_reason}`);
    const st = await chatStream({ ...p, stop });
    expect(st.text === want, `stream: ${show(st.text)}, want ${show(want)}`);
    expect(st.finish === "stop", `stream finish_reason ${st.finish}`);
    const q = { prompt: "LAWYER, n.", max_tokens: 24, seed: 42 };
    const cfree = (await client.completions.create(q)).choices[0].text;
    const ccp = [...cfree];
    if (ccp.length >= 2) {
        const cs = ccp.slice(Math.floor(ccp.length / 2)).join("").slice(0, 1);
        const c = await client.completions.create({ ...q, stop: cs });
        expect(c.choices[0].text === cfree.slice(0, cfree.indexOf(cs)),
               `completions: stop ${JSON.stringify(cs)} gave ${show(c.choices[0].text)}`);
        expect(c.choices[0].finish_reason === "stop", "completions: finish_reason");
    }
    return `stop ${JSON.stringify(stop)} cuts ${show(free)} to ${show(t)}, finish_reason stop ` +
        "(also streaming, and for completions)";
});

await check("max_tokens / max_completion_tokens", async () => {
    const a = await client.chat.completions.create({ messages: chatMsgs, max_tokens: 3 });
    checkUsage(a.usage, 3);
    const b = await client.chat.completions.create({ messages: chatMsgs,
                                                     max_completion_tokens: 2 });
    checkUsage(b.usage, 2);
    const c = await client.completions.create({ prompt: "A", max_tokens: 1 });
    checkUsage(c.usage, 1);
    for (const [r, k] of [[a, 3], [b, 2]])
        expect(r.usage.completion_tokens === k ? r.choices[0].finish_reason === "length" : true,
               "finish_reason is not length at the limit");
    return `completion_tokens ${a.usage.completion_tokens} <= 3, ` +
        `${b.usage.completion_tokens} <= 2, ${c.usage.completion_tokens} <= 1`;
});

await check("seed", async () => {
    const p = { messages: chatMsgs, max_tokens: 16, temperature: 1, seed: 1234 };
    const a = await chatText(p), b = await chatText(p);
    expect(a === b, `seed 1234 gave ${show(a)} then ${show(b)}`);
    const c = await chatText({ ...p, seed: 99 });
    const t1 = (await client.completions.create({ prompt: "A", max_tokens: 12, seed: 5 }))
        .choices[0].text;
    const t2 = (await client.completions.create({ prompt: "A", max_tokens: 12, seed: 5 }))
        .choices[0].text;
    expect(t1 === t2, "completions: the same seed gave different text");
    return `same seed, same text (chat and completions); seed 99 ` +
        (c === a ? "gave the same text too" : "differs");
});

await check("temperature 0", async () => {
    const p = { messages: chatMsgs, max_tokens: 16, temperature: 0 };
    const a = await chatText(p), b = await chatText(p), c = await chatText({ ...p, seed: 5 });
    expect(a === b && b === c, `${show(a)} / ${show(b)} / ${show(c)}`);
    return `greedy, repeatable: ${show(a)}`;
});

await check("presence_penalty / frequency_penalty", async () => {
    // greedy decoding of a small model repeats itself; penalties over the completion's own
    // tokens must change that (OpenAI: logit -= count * frequency + (count > 0) * presence)
    const p = { prompt: "LAWYER, n.", max_tokens: 24, temperature: 0 };
    const plain = (await client.completions.create(p)).choices[0].text;
    const pres = (await client.completions.create({ ...p, presence_penalty: 2 })).choices[0].text;
    const freq = (await client.completions.create({ ...p, frequency_penalty: 2 })).choices[0].text;
    const neg = (await client.completions.create({ ...p, presence_penalty: -2,
                                                   frequency_penalty: -2 })).choices[0].text;
    const zero = (await client.completions.create({ ...p, presence_penalty: 0,
                                                    frequency_penalty: 0 })).choices[0].text;
    expect(zero === plain, "penalties of 0 changed the text");
    // (a model that does not repeat itself greedily still changes under negative penalties)
    expect(pres !== plain || freq !== plain || neg !== plain,
           `the penalties changed nothing: ${show(plain)}`);
    const pc = await client.chat.completions.create({ messages: chatMsgs, max_tokens: 8,
                                                      frequency_penalty: -0.5,
                                                      presence_penalty: 1.5 });
    checkUsage(pc.usage, 8);
    await expectError(() => client.completions.create({ ...p, presence_penalty: 2.5 }),
                      OpenAI.BadRequestError, 400, "presence_penalty");
    await expectError(() => client.chat.completions.create({ messages: chatMsgs,
                                                             frequency_penalty: -3 }),
                      OpenAI.BadRequestError, 400, "frequency_penalty");
    return `plain ${show(plain)} / presence 2 ${show(pres)} / frequency 2 ${show(freq)}` +
        ` / both -2 ${show(neg)}; 2.5 and -3 are 400`;
});

await check("logprobs / logit_bias", async () => {
    // each generated token's log-probability and its alternatives, in both endpoints' forms;
    // greedy: the token is its own first alternative. Then banning that token with logit_bias
    // -100 must make the greedy choice the second alternative.
    const c = await client.completions.create({ prompt: "LAWYER, n.", max_tokens: 6,
                                                temperature: 0, logprobs: 3 });
    const lp = c.choices[0].logprobs;
    expect(lp && Array.isArray(lp.tokens) && lp.tokens.length === 6, "completions: no tokens");
    expect(lp.tokens.join("") === c.choices[0].text, "completions: tokens do not make the text");
    let off = 0;
    for (let i = 0; i < 6; i++) {
        const top = Object.entries(lp.top_logprobs[i]);
        expect(lp.text_offset[i] === off, `text_offset ${i}`);
        off += lp.tokens[i].length;
        expect(lp.token_logprobs[i] <= 0, "a log-probability above 0");
        expect(top.length >= 1 && top[0][0] === lp.tokens[i] &&
               top[0][1] === lp.token_logprobs[i], `greedy token ${i} is not its top`);
    }
    const r = await client.chat.completions.create({ messages: chatMsgs, max_tokens: 4,
                                                     temperature: 0, logprobs: true,
                                                     top_logprobs: 2 });
    const content = r.choices[0].logprobs && r.choices[0].logprobs.content;
    expect(Array.isArray(content) && content.length === r.usage.completion_tokens,
           "chat: not one entry per token");
    expect(content.map((e) => e.token).join("") === r.choices[0].message.content,
           "chat: tokens do not make the content");
    expect(content.every((e) => Array.isArray(e.bytes) && e.top_logprobs.length === 2),
           "chat: bytes or top_logprobs missing");
    let streamed = 0;
    const st = await client.chat.completions.create({ messages: chatMsgs, max_tokens: 5,
                                                      logprobs: true, stream: true });
    for await (const ch of st)
        if (ch.choices[0] && ch.choices[0].logprobs)
            streamed += ch.choices[0].logprobs.content.length;
    expect(streamed === 5, `stream: ${streamed} entries for 5 tokens`);
    // logit_bias -100 on the greedy first token makes its second alternative the greedy
    // choice. The SDK has no token ids, so find the first token's id by banning ids in blocks
    // of 1024 (the most a request takes), then halving the block that changes the token.
    const first = Object.entries(lp.top_logprobs[0]);
    const greedy1 = async (ids) => {
        const bias = {};
        for (const id of ids) bias[String(id)] = -100;
        const r1 = await client.completions.create({ prompt: "LAWYER, n.", max_tokens: 1,
                                                     temperature: 0, logit_bias: bias });
        return r1.choices[0].text;
    };
    const range = (lo, hi) => Array.from({ length: hi - lo }, (_, i) => lo + i);
    let lo = -1, hi = -1;
    for (let b0 = 0; b0 < (1 << 20) && lo < 0; b0 += 1024) {
        let t;
        try {
            t = await greedy1(range(b0, b0 + 1024));
        } catch (e) { // past the vocabulary: 400; try the ids that are left
            break;
        }
        if (t !== lp.tokens[0]) { lo = b0; hi = b0 + 1024; }
    }
    expect(lo >= 0, "banning every block of 1024 ids never changed the first token");
    while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if ((await greedy1(range(lo, mid))) !== lp.tokens[0]) hi = mid; else lo = mid;
    }
    const second = first.length > 1 ? first[1][0] : null;
    const after = await greedy1([lo]);
    expect(after !== lp.tokens[0] && (second === null || after === second),
           `banning id ${lo} gave ${show(after)}, not the second alternative ${show(second)}`);
    await expectError(() => client.completions.create({ prompt: "A", max_tokens: 1,
                                                        logit_bias: { "99999999": 1 } }),
                      OpenAI.BadRequestError, 400, "logit_bias");
    return `completions top ${show(first.map((e) => e[0]).join("|"))}, ` +
        `chat ${content.length} entries, streamed ${streamed}; logit_bias -100 on id ${lo} ` +
        `gives ${show(after)}; an id beyond the vocabulary is 400`;
});

await check("n, best_of, echo", async () => {
    const r1 = await client.chat.completions.create({ messages: chatMsgs, max_tokens: 2, n: 1 });
    expect(r1.choices.length === 1, "n: 1 gave other than one choice");
    // n: 2, seeded: choice i is what n: 1 answers with seed + i; usage counts both
    const base = { prompt: "LAWYER, n.", max_tokens: 4, temperature: 1, seed: 11 };
    const one = [];
    for (const sd of [11, 12])
        one.push((await client.completions.create({ ...base, seed: sd })).choices[0].text);
    const r2 = await client.completions.create({ ...base, n: 2 });
    expect(r2.choices.length === 2, `n: 2 gave ${r2.choices.length} choices`);
    r2.choices.forEach((c, i) => {
        expect(c.index === i, `choice ${i} has index ${c.index}`);
        expect(c.text === one[i], `choice ${i} ${show(c.text)} is not seed ${11 + i}'s ` +
               show(one[i]));
    });
    const ctoks = r2.usage.completion_tokens;
    expect(ctoks >= 2 && ctoks <= 8, `n: 2 usage.completion_tokens ${ctoks}`);
    const c2 = await client.chat.completions.create({ messages: chatMsgs, max_tokens: 2, n: 2 });
    expect(c2.choices.length === 2 && c2.choices[1].index === 1 &&
           typeof c2.choices[1].message.content === "string", "chat n: 2 gave other choices");
    // streamed: the chunks carry their index, each choice ends once, one usage chunk
    const stream = await client.completions.create({ ...base, n: 2, stream: true,
                                                     stream_options: { include_usage: true } });
    const texts = ["", ""], ends = [0, 0];
    let usage = null;
    for await (const ch of stream) {
        if (ch.usage) usage = ch.usage;
        for (const c of ch.choices) {
            texts[c.index] += c.text;
            if (c.finish_reason) ends[c.index]++;
        }
    }
    expect(texts[0] === one[0] && texts[1] === one[1],
           `streamed n: 2 gave ${show(texts[0])} / ${show(texts[1])}`);
    expect(ends[0] === 1 && ends[1] === 1, `finish_reason chunks per choice: ${ends}`);
    expect(usage && usage.completion_tokens === ctoks, "streamed n: 2 usage differs");
    const cs = await client.chat.completions.create({ messages: chatMsgs, max_tokens: 2, n: 2,
                                                      stream: true });
    const roles = [0, 0];
    for await (const ch of cs) for (const c of ch.choices) if (c.delta.role) roles[c.index]++;
    expect(roles[0] === 1 && roles[1] === 1, `chat stream n: 2 role chunks ${roles}`);
    // best_of 3, n 1: one of the three candidates' texts
    const bo = await client.completions.create({ ...base, best_of: 3 });
    const third = (await client.completions.create({ ...base, seed: 13 })).choices[0].text;
    expect(bo.choices.length === 1 && [...one, third].includes(bo.choices[0].text),
           `best_of 3 gave ${show(bo.choices[0].text)}, not a candidate`);
    // echo: the prompt first
    const ec = await client.completions.create({ ...base, echo: true });
    expect(ec.choices[0].text === base.prompt + one[0], `echo gave ${show(ec.choices[0].text)}`);
    const e = await expectError(() => client.completions.create({ ...base, n: 2, best_of: 1 }),
                                OpenAI.BadRequestError, 400, "best_of");
    await expectError(() => client.completions.create({ ...base, best_of: 2, stream: true }),
                      OpenAI.BadRequestError, 400, "best_of");
    await expectError(() => client.chat.completions.create({ messages: chatMsgs, max_tokens: 2,
                                                             n: 17 }),
                      OpenAI.BadRequestError, 400, "n");
    return `n: 2 = seeds 11 and 12 (also streamed, ${ctoks} tokens), chat n: 2, best_of 3, ` +
        `echo; best_of < n is 400 (${e.error.message})`;
});

await check("prompt batches, token ids, echo + logprobs (scoring)", async () => {
    // a batch: prompt i's choice j at index i*n + j, each what the prompt gets alone
    const base = { max_tokens: 3, temperature: 1, seed: 21 };
    const prompts = ["LAWYER, n.", "CYNIC, n."];
    const alone = [];
    for (const p of prompts)
        alone.push((await client.completions.create({ ...base, prompt: p })).choices[0].text);
    const b = await client.completions.create({ ...base, prompt: prompts });
    expect(b.choices.length === 2 && b.choices.every((c, i) => c.index === i &&
                                                      c.text === alone[i]),
           `batch gave ${JSON.stringify(b.choices.map((c) => [c.index, c.text]))}`);
    // the server's own tokens (POST /tokenize, an extension), sent back as ids: lm-eval's
    // local-completions request, a batch of two with echo, logprobs 1 and max_tokens 0
    const root = baseURL.replace(/\/v1\/?$/, "");
    const ids = [];
    for (const p of prompts) {
        const t = await (await fetch(root + "/tokenize", { method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ content: p }) })).json();
        expect(Array.isArray(t.tokens) && t.tokens.length > 1, "/tokenize gave no tokens");
        ids.push(t.tokens);
    }
    const s = await client.completions.create({ prompt: ids, max_tokens: 0, echo: true,
                                                logprobs: 1, temperature: 0, seed: 1234 });
    expect(s.choices.length === 2, `scoring gave ${s.choices.length} choices`);
    s.choices.forEach((c, i) => {
        const lp = c.logprobs;
        expect(c.text === prompts[i], `echoed ${show(c.text)}`);
        expect(lp.tokens.length === ids[i].length && lp.token_logprobs[0] === null &&
               lp.top_logprobs[0] === null, "the first prompt token is not null");
        expect(lp.token_logprobs.slice(1).every((x) => typeof x === "number" && x <= 0),
               "prompt token log-probabilities");
    });
    expect(s.usage.prompt_tokens === ids[0].length + ids[1].length &&
           s.usage.completion_tokens === 0, `usage ${JSON.stringify(s.usage)}`);
    // max_tokens 1: the prompt's figures are the same, the generated token follows
    const g = await client.completions.create({ prompt: ids[0], max_tokens: 1, echo: true,
                                                logprobs: 1, temperature: 0 });
    const gl = g.choices[0].logprobs.token_logprobs;
    expect(gl.length === ids[0].length + 1 &&
           gl.slice(0, -1).every((x, k) => x === s.choices[0].logprobs.token_logprobs[k]),
           "echoed log-probabilities differ between max_tokens 0 and 1");
    await expectError(() => client.completions.create({ prompt: [[1, 2], []], max_tokens: 1 }),
                      OpenAI.BadRequestError, 400, "prompt");
    return `a batch of 2 (= alone), 2 token-id prompts scored (${s.usage.prompt_tokens} ` +
        "tokens, the first null), max_tokens 1 after them";
});

await check("unknown and unsupported extra fields", async () => {
    const r = await client.chat.completions.create({
        model: modelId, max_tokens: 4,
        messages: [{ role: "system", content: "You are Bierce.", name: "sys" },
                   { role: "developer", content: [{ type: "text", text: "Be brief." }] },
                   { role: "user", content: [{ type: "text", text: "On politics" }],
                     name: "reader" }],
        user: "someone", metadata: { run: "check" }, store: false, logit_bias: {},
        logprobs: false, response_format: { type: "text" }, service_tier: "auto",
        modalities: ["text"], parallel_tool_calls: true, stream_options: null,
        tools: [{ type: "function", function: { name: "lookup", parameters: {} } }],
        tool_choice: "auto",
        top_p: 1, n: 1, seed: 1, stop: null,
        fti_retrieval: false, some_future_field: { nested: [1, 2] },
    });
    expect(typeof r.choices[0].message.content === "string", "no content");
    const c = await client.completions.create({ prompt: ["LAWYER, n."], max_tokens: 2,
                                                user: "someone", suffix: null, echo: false,
                                                best_of: 1, logit_bias: null, logprobs: null,
                                                extra_thing: 1 });
    expect(typeof c.choices[0].text === "string", "no text");
    return "ignored: user, metadata, store, response_format text, tools (auto), service_tier, " +
        "modalities, parallel_tool_calls, name, unknown fields";
});

await check("errors are APIError with status 400", async () => {
    const bad = [
        ["temperature 3", () => client.chat.completions.create({ messages: chatMsgs,
                                                                 temperature: 3 }),
         "temperature"],
        ["messages []", () => client.chat.completions.create({ messages: [] }), "messages"],
        ["no user message", () => client.chat.completions.create({
            messages: [{ role: "system", content: "x" }] }), "messages"],
        ["max_tokens 0", () => client.completions.create({ prompt: "A", max_tokens: 0 }),
         "max_tokens"],
        ["prompt missing", () => client.completions.create({ max_tokens: 2 }), "prompt"],
        ["stop of 5", () => client.completions.create({ prompt: "A",
                                                        stop: ["a", "b", "c", "d", "e"] }),
         "stop"],
        ["top_logprobs without logprobs", () => client.chat.completions.create({
            messages: chatMsgs, top_logprobs: 2 }), "top_logprobs"],
        ["response_format json_object", () => client.chat.completions.create({
            messages: chatMsgs, response_format: { type: "json_object" } }), "response_format"],
        ["tool_choice required", () => client.chat.completions.create({
            messages: chatMsgs, tool_choice: "required",
            tools: [{ type: "function", function: { name: "f", parameters: {} } }] }),
         "tool_choice"],
        ["logit_bias of 200", () => client.completions.create({ prompt: "A",
                                                                logit_bias: { "5": 200 } }),
         "logit_bias"],
        ["stream with a bad top_p", () => client.chat.completions.create({
            messages: chatMsgs, top_p: 0, stream: true }), "top_p"],
        ["max_tokens beyond the context", () => client.completions.create({
            prompt: "A", max_tokens: 1 << 30 }), "max_tokens"],
    ];
    for (const [what, fn, param] of bad) {
        try {
            await expectError(fn, OpenAI.BadRequestError, 400, param);
        } catch (e) {
            fail(`${what}: ${e.message}`);
        }
    }
    const nf = await expectError(() => client.post("/no/such/path", { body: {} }),
                                 OpenAI.NotFoundError, 404);
    const raw = await fetch(baseURL.replace(/\/$/, "") + "/chat/completions", {
        method: "POST", headers: { "content-type": "application/json" }, body: "{not json",
    });
    expect(raw.status === 400, `invalid JSON: status ${raw.status}`);
    expect((raw.headers.get("content-type") || "").startsWith("application/json"),
           "invalid JSON: the error body is not application/json");
    const body = await raw.json();
    expect(body.error && body.error.message, "invalid JSON: no error.message");
    return `${bad.length} bad requests -> BadRequestError 400 with param and message; ` +
        `unknown path -> NotFoundError 404 (${nf.error.message}); invalid JSON -> 400`;
});

await check("context_length_exceeded", async () => {
    const e = await expectError(() => client.completions.create({
        prompt: "A", max_tokens: 1 << 30 }), OpenAI.BadRequestError, 400);
    let ctx = 0;
    for await (const m of await client.models.list()) ctx = m.context_length || 0;
    if (!ctx) return `no context_length in /v1/models (${e.message})`;
    const e2 = await expectError(() => client.completions.create({ prompt: "A",
                                                                   max_tokens: ctx }),
                                 OpenAI.BadRequestError, 400);
    expect(e2.code === "context_length_exceeded", `code ${e2.code}`);
    return `max_tokens ${ctx} (the whole context): code ${e2.code}`;
});

await check("request id header", async () => {
    const { data, response } = await client.chat.completions.create({
        messages: chatMsgs, max_tokens: 2 }).withResponse();
    expect(response.headers.get("x-request-id"), "no x-request-id");
    expect(data._request_id === response.headers.get("x-request-id"), "_request_id");
    return `x-request-id ${data._request_id}`;
});

console.log(`check-openai: ${passed} ok, ${failed} failed`);
process.exit(failed ? 1 : 0);
