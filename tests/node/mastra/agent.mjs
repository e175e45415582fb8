// Run one Mastra agent with one tool and export its traces the way a Mastra user
// configures tracing, then flush and shut observability down.
//
//   node agent.mjs --endpoint http://127.0.0.1:8000/v1/traces --key tsk_... \
//     --llm-url http://127.0.0.1:9999/v1 [--exporter otel|arize] \
//     [--question "..."] [--metadata '{"expected_tools": ["weather"]}'] \
//     [--thread thread-1] [--resource user-7] [--stream]
//
// The model is Mastra's model router pointed at an OpenAI-compatible server
// (--llm-url). `--exporter otel` uses @mastra/otel-exporter's "custom" provider
// (endpoint, http/protobuf, headers), `--exporter arize` uses @mastra/arize
// (OpenInference attributes) with the key as its API key. `--stream` calls
// agent.stream() instead of agent.generate(). Prints one JSON line
// ({"traceId", "text", "exporter"}) on stdout.

import { parseArgs } from "node:util";
import { Mastra } from "@mastra/core";
import { Agent } from "@mastra/core/agent";
import { createTool } from "@mastra/core/tools";
import { Observability } from "@mastra/observability";
import { OtelExporter } from "@mastra/otel-exporter";
import { ArizeExporter } from "@mastra/arize";
import { z } from "zod";

const { values: options } = parseArgs({
  options: {
    endpoint: { type: "string" },
    key: { type: "string" },
    "llm-url": { type: "string" },
    exporter: { type: "string", default: "otel" },
    question: { type: "string", default: "What is the weather in Paris?" },
    metadata: { type: "string", default: "{}" },
    thread: { type: "string" },
    resource: { type: "string" },
    stream: { type: "boolean", default: false },
  },
});

function fail(message) {
  console.error(message);
  process.exit(2);
}

if (!options.endpoint || !options.key || !options["llm-url"]) {
  fail("--endpoint, --key and --llm-url are required");
}

function exporter() {
  if (options.exporter === "otel") {
    return new OtelExporter({
      provider: {
        custom: {
          endpoint: options.endpoint,
          protocol: "http/protobuf",
          headers: { Authorization: `Bearer ${options.key}` },
        },
      },
    });
  }
  if (options.exporter === "arize") {
    return new ArizeExporter({
      endpoint: options.endpoint,
      apiKey: options.key,
      projectName: "weather",
    });
  }
  fail("--exporter is otel or arize");
}

const weather = createTool({
  id: "get-weather",
  description: "Current weather for a city",
  inputSchema: z.object({ city: z.string() }),
  outputSchema: z.object({ forecast: z.string() }),
  execute: async ({ city }) => ({ forecast: `Sunny, 21 C in ${city}` }),
});

const weatherAgent = new Agent({
  id: "weather-agent",
  name: "Weather Agent",
  instructions: "You are a weather assistant. Use the weather tool, then answer in one sentence.",
  model: {
    id: "openai/gpt-4o-mini",
    url: options["llm-url"],
    apiKey: "test-key",
    api: "chat",
  },
  tools: { weather },
});

const observability = new Observability({
  configs: {
    tracescore: {
      serviceName: "weather-service",
      exporters: [exporter()],
    },
  },
});

const mastra = new Mastra({ agents: { weatherAgent }, observability });

const memory =
  options.thread && options.resource
    ? { thread: options.thread, resource: options.resource }
    : undefined;
const agent = mastra.getAgent("weatherAgent");
const callOptions = { tracingOptions: { metadata: JSON.parse(options.metadata) }, memory };
let result;
if (options.stream) {
  const output = await agent.stream(options.question, callOptions);
  result = { text: await output.text, traceId: output.traceId };
} else {
  result = await agent.generate(options.question, callOptions);
}

// Spans are batched; shutting observability down flushes them.
await observability.shutdown();

console.log(JSON.stringify({ traceId: result.traceId, text: result.text, exporter: options.exporter }));
