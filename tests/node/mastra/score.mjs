// Mastra's own client scores spans on tracescore and lists a span's scores.
//
// Env: BASE_URL, TOKEN (sent as "Authorization: Bearer"), SCORER, TRACE_ID,
// SPAN_ID. Calls client.score({scorerName, targets}) for that span and for
// the trace's root (no spanId), then polls client.listScoresBySpan() until the
// span has a score. Both answers are checked against Mastra's own zod schemas.
// Prints {"started": ..., "listed": ...} as JSON.
import { MastraClient } from "@mastra/client-js";
import {
  listScoresBySpanResponseSchema,
  scoreTracesResponseSchema,
} from "@mastra/core/storage";

const { BASE_URL, TOKEN, SCORER, TRACE_ID, SPAN_ID } = process.env;
const client = new MastraClient({
  baseUrl: BASE_URL,
  headers: { Authorization: `Bearer ${TOKEN}` },
  retries: 0,
});

const started = scoreTracesResponseSchema.parse(
  await client.score({
    scorerName: SCORER,
    targets: [{ traceId: TRACE_ID, spanId: SPAN_ID }, { traceId: TRACE_ID }],
  }),
);

// Mastra's schemas describe the server's objects, whose timestamps are Dates;
// over JSON they are ISO strings, as Mastra's own server sends them.
const withDates = (page) => ({
  ...page,
  scores: page.scores.map((row) => ({
    ...row,
    createdAt: new Date(row.createdAt),
    updatedAt: row.updatedAt === null ? null : new Date(row.updatedAt),
  })),
});

let listed;
for (let i = 0; i < 120; i++) {
  listed = await client.listScoresBySpan({
    traceId: TRACE_ID,
    spanId: SPAN_ID,
    page: 0,
    perPage: 10,
  });
  listScoresBySpanResponseSchema.parse(withDates(listed));
  if (listed.scores.length) break;
  await new Promise((resolve) => setTimeout(resolve, 250));
}
let refused;
try {
  await client.score({ scorerName: "no-such-scorer", targets: [{ traceId: TRACE_ID }] });
} catch (error) {
  refused = { status: error.status, body: error.body };
}
console.log(JSON.stringify({ started, listed, refused }));
