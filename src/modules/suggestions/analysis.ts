import type { SessionAnalysis } from "../../db/schema";

type Message = { sender: "user" | "match"; text: string };
type Side = SessionAnalysis["investment"]["user"];

/** A question mark, Latin or full-width (Japanese, Chinese). */
const QUESTION = /[?？]/;
/** What a question is worth in effort, in characters: asking keeps a conversation going. */
const QUESTION_WEIGHT = 40;

function side(messages: Message[]): Side {
  const characters = messages.reduce((sum, message) => sum + [...message.text].length, 0);
  return {
    messages: messages.length,
    averageLength: messages.length === 0 ? 0 : Math.round(characters / messages.length),
    questions: messages.filter((message) => QUESTION.test(message.text)).length,
  };
}

const effort = (stats: Side) => stats.messages * stats.averageLength + stats.questions * QUESTION_WEIGHT;

/**
 * Who puts more into the conversation, computed from the messages (never asked of a model): per
 * side the message count, the average length in characters and the messages that ask something,
 * and a balance from -1 (the match does all the work) to 1 (the user does), 0 when even.
 */
export function investmentOf(conversation: Message[]): SessionAnalysis["investment"] {
  const user = side(conversation.filter((message) => message.sender === "user"));
  const match = side(conversation.filter((message) => message.sender === "match"));
  const total = effort(user) + effort(match);
  const balance = total === 0 ? 0 : Math.round(((effort(user) - effort(match)) / total) * 100) / 100;
  return { user, match, balance };
}

/** A chat analysis needs both sides to have spoken, or at least two messages to read. */
export const canAnalyse = (conversation: Message[]) => conversation.length >= 2;
