// How long QStash waits before it tries a failed delivery again.

const FUNCTIONS = {
  pow: Math.pow, sqrt: Math.sqrt, abs: Math.abs, exp: Math.exp, floor: Math.floor,
  ceil: Math.ceil, round: Math.round, min: Math.min, max: Math.max,
};
// Numbers, arithmetic, commas and parentheses, `retried` and the functions QStash documents.
// No quotes, dots, brackets or other names get through, so what passes can run as JavaScript.
const EXPRESSION = /^(?:\s|\d+(?:\.\d+)?|retried|pow|sqrt|abs|exp|floor|ceil|round|min|max|[-+*/(),])+$/;

/**
 * An `Upstash-Retry-Delay` expression (milliseconds, a function of `retried`, the retries made
 * so far) as a function; throws at once on anything QStash would not accept.
 */
export function compileRetryDelay(expression: string): (retried: number) => number {
  const invalid = () => new Error(`invalid retry delay expression: ${expression}`);
  if (!EXPRESSION.test(expression)) throw invalid();
  let run: (...args: unknown[]) => unknown;
  try {
    run = new Function("retried", ...Object.keys(FUNCTIONS), `"use strict"; return (${expression});`) as typeof run;
  } catch {
    throw invalid();
  }
  const evaluate = (retried: number) => {
    let value: unknown;
    try {
      value = run(retried, ...Object.values(FUNCTIONS));
    } catch {
      throw invalid();
    }
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw invalid();
    return value;
  };
  evaluate(0);
  return evaluate;
}

/**
 * The wait before retry number `retry` (1 for the first): the expression if the message has
 * one, else QStash's backoff of min(1 day, e^(2.5·retry)) seconds.
 */
export function retryDelayMs(retry: number, expression: string | undefined): number {
  if (expression) return compileRetryDelay(expression)(retry - 1);
  return Math.min(86_400, Math.exp(2.5 * retry)) * 1000;
}
