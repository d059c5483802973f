// Drives an rlms serve twin with the official openai npm package and prints what it saw as one JSON line.
// Usage: node client.mjs BASE_URL MODEL API_KEY
import OpenAI from "openai";

const [baseURL, model, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0 });
const messages = [{ role: "user", content: "why is the sky blue" }];
const out = {};

// Streaming chat with reasoning: deltas on `reasoning` (vLLM's field; the SDK passes unknown fields through), then content.
const stream = await client.chat.completions.create({
  model, messages, max_tokens: 40, stream: true, stream_options: { include_usage: true }, ignore_eos: true,
});
let reasoning = "", content = "", firstTextBeforeContent = null, finish = null, usage = null, chunks = 0;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  const choice = chunk.choices[0];
  if (!choice) continue;
  if (choice.delta.reasoning) reasoning += choice.delta.reasoning;
  if (choice.delta.content) {
    if (firstTextBeforeContent === null) firstTextBeforeContent = reasoning.length > 0;
    content += choice.delta.content;
  }
  if (choice.finish_reason) finish = choice.finish_reason;
}
out.stream = { reasoning, content, finish, usage, chunks, reasoningFirst: firstTextBeforeContent };

// Non-streaming.
const done = await client.chat.completions.create({ model, messages, max_tokens: 10, ignore_eos: true });
out.nonStream = { object: done.object, finish: done.choices[0].finish_reason, content: done.choices[0].message.content,
  reasoning: done.choices[0].message.reasoning, usage: done.usage };

// Text completions.
const text = await client.completions.create({ model, prompt: "one two three", max_tokens: 5, ignore_eos: true });
out.completion = { text: text.choices[0].text, usage: text.usage };

// Errors arrive as the SDK's typed errors, with the server's message.
async function error(f) {
  try { await f(); return null; } catch (e) { return { status: e.status, name: e.constructor.name, message: e.message, type: e.type ?? null, param: e.param ?? null }; }
}
out.badRequest = await error(() => client.chat.completions.create({ model, messages, max_tokens: -1 }));
out.notFound = await error(() => client.chat.completions.create({ model: "no-such-model", messages }));
out.unauthorized = await error(() => new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: "wrong", maxRetries: 0 }).chat.completions.create({ model, messages }));
out.models = (await client.models.list()).data.map(m => m.id);
console.log(JSON.stringify(out));
