// `npm run bench:openers`: what a magic-opener generation costs at list prices, from the `ai_calls`
// rows the Worker writes. Opener generations run one per user (the AI rate tier stays on), the
// bench waits until each is completed, then sums every AI call those users made, per kind and model.
// Alone it starts and stops its own stack.
// Usage: npm run bench:openers [-- --generations 20 --count 3]
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { expectJson } from "../../local/api-client.ts";
import { formatTable, type Measure } from "./measures.ts";
import { type BenchStack, withBenchStack } from "./stack.ts";
import { count } from "./stats.ts";

const WAIT_MS = 120_000;

const profiles = [
  { name: "Alex", bio: "Climber, dim sum evangelist, bad at karaoke but committed", interests: ["bouldering", "dim sum", "karaoke"] },
  { name: "Sam", bio: "Sourdough person. Will talk about hydration ratios. Looking for a hiking buddy", interests: ["baking", "hiking"] },
  { name: "Robin", bio: "Product designer by day, amateur astronomer by night", interests: ["astronomy", "design", "coffee"] },
];

export async function benchOpeners(stack: BenchStack, options: { generations: number; count: number }): Promise<Measure[]> {
  const run = Date.now();
  const users = `user_bench_open_${run}_%`;
  const started = await Promise.all(
    Array.from({ length: options.generations }, async (_, i) => {
      const token = await stack.token(`user_bench_open_${run}_${i}`);
      const response = await fetch(`${stack.url}/api/v1/magic-openers/generate`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ profile: profiles[i % profiles.length], count: options.count }),
      });
      return (await expectJson<{ data: { generationId: string } }>(response, 202, "POST /magic-openers/generate")).data.generationId;
    }),
  );

  // Done when every generation has ended: the job writes the status after its openers and AI calls.
  const deadline = Date.now() + WAIT_MS;
  let statuses: Array<[string, number]> = [];
  for (;;) {
    statuses = (await stack.sql(`select status::text, count(*)::int from opener_generations where id = any($1) group by status`, [started])) as Array<[string, number]>;
    const open = statuses.filter(([status]) => status === "queued" || status === "streaming").reduce((sum, [, n]) => sum + n, 0);
    if (open === 0) break;
    if (Date.now() > deadline) throw new Error(`openers not done in ${WAIT_MS / 1000} s: ${JSON.stringify(statuses)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const completed = statuses.find(([status]) => status === "completed")?.[1] ?? 0;
  if (completed !== options.generations) throw new Error(`${completed} of ${options.generations} opener generations completed: ${JSON.stringify(statuses)}`);

  const rows = (await stack.sql(
    `select kind, model, count(*)::int, sum(cost_usd)::float8, sum(input_tokens)::int, sum(output_tokens)::int
     from ai_calls join users on users.id = ai_calls.user_id where users.clerk_id like $1 group by kind, model order by kind`,
    [users],
  )) as Array<[string, string, number, number, number, number]>;
  const total = rows.reduce((sum, [, , , usd]) => sum + usd, 0);
  const byKind = rows
    .map(([kind, model, calls, usd, input, output]) => `${kind} ${model} $${(usd / options.generations).toFixed(5)} (${Math.round(input / calls)} in/${Math.round(output / calls)} out tokens)`)
    .join(", ");
  return [
    {
      name: "AI cost per opener generation",
      value: total / options.generations,
      unit: "USD",
      target: { max: 0.002 },
      note: `from ai_calls at list prices, ${options.count} openers: ${byKind}`,
    },
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { generations: { type: "string", default: "20" }, count: { type: "string", default: "3" } } });
  await withBenchStack({}, async (stack) => {
    console.log(formatTable(await benchOpeners(stack, { generations: count(values, "generations"), count: count(values, "count") })));
  });
}
