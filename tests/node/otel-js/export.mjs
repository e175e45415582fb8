// Export one agent trace with the official OpenTelemetry JS exporter, as a Node
// service instrumented by hand with the GenAI semantic conventions would.
//
//   node export.mjs --endpoint http://127.0.0.1:8000/v1/traces --key tsk_... \
//     [--protocol protobuf|json] [--compression none|gzip] [--trace-id <32 hex>] [--seed N]
//
// The trace: an `invoke_agent` root with the question and the answer, two `chat`
// LLM calls with model and token usage, and two `execute_tool` calls, one of
// which returns a large order history, so the body is tens of kilobytes.
// Spans go through a BatchSpanProcessor, as in a real service; the script
// flushes and shuts the provider down, prints one JSON line on stdout
// ({"traceId", "spanCount", "exports": [...], "ok"}) and exits 1 when the
// export failed.

import { parseArgs } from "node:util";
import { context, diag, DiagConsoleLogger, DiagLogLevel, SpanKind, trace } from "@opentelemetry/api";
import { ExportResultCode } from "@opentelemetry/core";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtobufExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor, RandomIdGenerator } from "@opentelemetry/sdk-trace-base";

const { values: options } = parseArgs({
  options: {
    endpoint: { type: "string" },
    key: { type: "string" },
    protocol: { type: "string", default: "protobuf" },
    compression: { type: "string", default: "none" },
    "trace-id": { type: "string" },
    seed: { type: "string", default: "1" },
  },
});

function fail(message) {
  console.error(message);
  process.exit(2);
}

if (!options.endpoint || !options.key) fail("--endpoint and --key are required");
if (!["protobuf", "json"].includes(options.protocol)) fail("--protocol is protobuf or json");
if (!["none", "gzip"].includes(options.compression)) fail("--compression is none or gzip");
const traceIdOption = options["trace-id"];
if (traceIdOption !== undefined && !/^[0-9a-f]{32}$/.test(traceIdOption)) {
  fail("--trace-id is 32 lowercase hex characters");
}

diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN);

// A small seeded generator (mulberry32): the same seed gives the same content.
function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = seededRandom(Number(options.seed));
const pick = (items) => items[Math.floor(random() * items.length)];
const hex = (length) =>
  Array.from({ length }, () => Math.floor(random() * 16).toString(16)).join("");

const Exporter = options.protocol === "json" ? JsonExporter : ProtobufExporter;
const exporter = new Exporter({
  url: options.endpoint,
  headers: { Authorization: `Bearer ${options.key}` },
  compression: options.compression,
  timeoutMillis: 15000,
});

// Observe what the real exporter reports for each batch; everything else is its own.
const exports = [];
const recordingExporter = {
  export(spans, resultCallback) {
    exporter.export(spans, (result) => {
      exports.push({
        spans: spans.length,
        code: result.code === ExportResultCode.SUCCESS ? "success" : "failed",
        error: result.error ? String(result.error.message || result.error) : null,
      });
      resultCallback(result);
    });
  },
  shutdown: () => exporter.shutdown(),
  forceFlush: () => exporter.forceFlush(),
};

const randomIds = new RandomIdGenerator();
const idGenerator = traceIdOption
  ? { generateTraceId: () => traceIdOption, generateSpanId: () => randomIds.generateSpanId() }
  : randomIds;

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({
    "service.name": "order-support",
    "service.version": "2.4.0",
    "deployment.environment.name": "test",
  }),
  idGenerator,
  spanProcessors: [new BatchSpanProcessor(recordingExporter, { maxExportBatchSize: 512 })],
});
const tracer = provider.getTracer("order-support-agent", "2.4.0");

// --- The agent run -----------------------------------------------------------

const MODEL = "gpt-4o-mini-2024-07-18";
const QUESTION = "Where is my order 1042, and did my last three orders ship to the new address?";
const ANSWER =
  "Order 1042 shipped yesterday with UPS (tracking 1Z999AA10123456784) and should arrive " +
  "on Thursday. Your last three orders all went to 18 Rue des Lilas, your new address.";
const SYSTEM = "You are the support agent of an online shop. Use the tools to look orders up.";

function orderHistory(count) {
  const cities = ["Lyon", "Paris", "Lille", "Nantes", "Toulouse", "Bordeaux", "Rennes"];
  const streets = ["Rue des Lilas", "Avenue Jean Jaurès", "Boulevard Voltaire", "Quai Perrache"];
  const items = ["espresso grinder", "pour-over kettle", "filter papers", "burr set", "scale"];
  const carriers = ["UPS", "DHL", "Colissimo", "Chronopost"];
  return Array.from({ length: count }, (_, n) => ({
    orderId: String(1042 - n),
    placedAt: new Date(Date.UTC(2026, 10, 20) - n * 86400000).toISOString(),
    status: pick(["shipped", "delivered", "delivered", "returned"]),
    carrier: pick(carriers),
    tracking: `1Z${hex(16).toUpperCase()}`,
    address: `${1 + Math.floor(random() * 120)} ${pick(streets)}, ${pick(cities)}`,
    lines: Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({
      sku: `SKU-${hex(8)}`,
      item: pick(items),
      quantity: 1 + Math.floor(random() * 4),
      priceCents: 500 + Math.floor(random() * 20000),
    })),
    note: `checksum ${hex(24)}`,
  }));
}

const t0 = Date.now() - 10_000;
const at = (ms) => new Date(t0 + ms);
const json = (value) => JSON.stringify(value);
const userMessage = { role: "user", parts: [{ type: "text", content: QUESTION }] };

const root = tracer.startSpan("invoke_agent order-support", {
  kind: SpanKind.INTERNAL,
  startTime: at(0),
  attributes: {
    "gen_ai.operation.name": "invoke_agent",
    "gen_ai.provider.name": "openai",
    "gen_ai.agent.name": "order-support",
    "gen_ai.agent.id": "agent_order_support",
    "gen_ai.conversation.id": "conv_5b1f0c",
    "gen_ai.request.model": MODEL,
    "gen_ai.system_instructions": json([{ type: "text", content: SYSTEM }]),
    "gen_ai.input.messages": json([userMessage]),
  },
});
const inRoot = trace.setSpan(context.active(), root);

function chat({ start, end, input, output, inputTokens, outputTokens, finish }) {
  const span = tracer.startSpan(
    `chat ${MODEL}`,
    {
      kind: SpanKind.CLIENT,
      startTime: at(start),
      attributes: {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": MODEL,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 1024,
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.system_instructions": json([{ type: "text", content: SYSTEM }]),
        "gen_ai.input.messages": json(input),
        "gen_ai.output.messages": json(output),
        "gen_ai.response.id": `chatcmpl-${hex(24)}`,
        "gen_ai.response.model": MODEL,
        "gen_ai.response.finish_reasons": [finish],
        "gen_ai.usage.input_tokens": inputTokens,
        "gen_ai.usage.output_tokens": outputTokens,
      },
    },
    inRoot,
  );
  span.end(at(end));
}

function tool({ start, end, name, callId, args, result }) {
  const span = tracer.startSpan(
    `execute_tool ${name}`,
    {
      kind: SpanKind.INTERNAL,
      startTime: at(start),
      attributes: {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.type": "function",
        "gen_ai.tool.call.id": callId,
        "gen_ai.tool.description": `Looks up ${name === "lookup_order" ? "one order" : "orders"}.`,
        "gen_ai.tool.call.arguments": json(args),
        "gen_ai.tool.call.result": json(result),
      },
    },
    inRoot,
  );
  span.end(at(end));
}

const lookupArgs = { order_id: "1042" };
const historyArgs = { customer_id: "cus_77", limit: 250 };
const toolCalls = {
  role: "assistant",
  parts: [
    { type: "tool_call", id: "call_lookup", name: "lookup_order", arguments: lookupArgs },
    { type: "tool_call", id: "call_history", name: "order_history", arguments: historyArgs },
  ],
};
const order = {
  orderId: "1042",
  status: "shipped",
  carrier: "UPS",
  tracking: "1Z999AA10123456784",
  eta: "Thursday",
  address: "18 Rue des Lilas, Lyon",
};
const history = orderHistory(historyArgs.limit);

chat({
  start: 120,
  end: 980,
  input: [userMessage],
  output: [{ ...toolCalls, finish_reason: "tool_calls" }],
  inputTokens: 412,
  outputTokens: 46,
  finish: "tool_calls",
});
tool({ start: 1000, end: 1180, name: "lookup_order", callId: "call_lookup", args: lookupArgs, result: order });
tool({
  start: 1000,
  end: 1650,
  name: "order_history",
  callId: "call_history",
  args: historyArgs,
  result: history,
});
chat({
  start: 1700,
  end: 3900,
  input: [
    userMessage,
    toolCalls,
    {
      role: "tool",
      parts: [
        { type: "tool_call_response", id: "call_lookup", result: order },
        { type: "tool_call_response", id: "call_history", result: history.slice(0, 3) },
      ],
    },
  ],
  output: [{ role: "assistant", parts: [{ type: "text", content: ANSWER }], finish_reason: "stop" }],
  inputTokens: 1830,
  outputTokens: 64,
  finish: "stop",
});

root.setAttribute(
  "gen_ai.output.messages",
  json([{ role: "assistant", parts: [{ type: "text", content: ANSWER }], finish_reason: "stop" }]),
);
root.setAttribute("gen_ai.usage.input_tokens", 2242);
root.setAttribute("gen_ai.usage.output_tokens", 110);
root.end(at(4000));

// --- Export ------------------------------------------------------------------

let flushError = null;
try {
  await provider.forceFlush();
} catch (error) {
  flushError = String(error?.message || error);
}
await provider.shutdown();

const ok = flushError === null && exports.length > 0 && exports.every((e) => e.code === "success");
console.log(
  JSON.stringify({
    traceId: root.spanContext().traceId,
    spanCount: 5,
    protocol: options.protocol,
    compression: options.compression,
    exports,
    flushError,
    ok,
  }),
);
process.exit(ok ? 0 : 1);
