/** The words seeded rows are made of: people, AI models, brief topics, review comments, ledger reasons. */

export const FIRST_NAMES = [
  "Ada", "Alan", "Amara", "Aiko", "Ben", "Bruno", "Chen", "Chloe", "Dara", "Diego", "Elena", "Emeka",
  "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jamal", "Jonas", "Kai", "Lars", "Leila",
  "Lina", "Malik", "Maya", "Mei", "Nadia", "Noah", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara",
  "Tomas", "Uma", "Yusuf", "Zoe",
] as const;

export const LAST_NAMES = [
  "Abara", "Bauer", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jensen",
  "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Patel", "Quispe", "Rossi", "Schmidt",
  "Tanaka", "Usman", "Varga", "Weber", "Xu", "Yilmaz", "Zhang", "Novak", "Silva", "Murphy", "Kim",
] as const;

export interface ModelEntry {
  readonly name: string;
  readonly provider: string;
  readonly slug: string;
}

/** The AI models catalogue seeded into `models`: a fixed list, so its size is not an option. */
export const MODELS: readonly ModelEntry[] = [
  { name: "GPT-4o", provider: "OpenAI", slug: "gpt-4o" },
  { name: "GPT-4o mini", provider: "OpenAI", slug: "gpt-4o-mini" },
  { name: "o3-mini", provider: "OpenAI", slug: "o3-mini" },
  { name: "Claude Sonnet 4", provider: "Anthropic", slug: "claude-sonnet-4" },
  { name: "Claude Haiku 3.5", provider: "Anthropic", slug: "claude-haiku-3-5" },
  { name: "Gemini 2.5 Pro", provider: "Google", slug: "gemini-2-5-pro" },
  { name: "Gemini 2.0 Flash", provider: "Google", slug: "gemini-2-0-flash" },
  { name: "Mistral Large", provider: "Mistral AI", slug: "mistral-large" },
  { name: "Codestral", provider: "Mistral AI", slug: "codestral" },
  { name: "Llama 3.3 70B", provider: "Meta", slug: "llama-3-3-70b" },
  { name: "DeepSeek-V3", provider: "DeepSeek", slug: "deepseek-v3" },
  { name: "Command R+", provider: "Cohere", slug: "command-r-plus" },
];

export const TOPICS = [
  "prompt design", "code review", "onboarding docs", "release notes", "incident reports",
  "customer interviews", "pricing pages", "API changelogs", "sales emails", "product specs",
  "meeting notes", "job descriptions", "user research", "landing pages", "support macros",
  "data pipelines", "quarterly plans", "design critiques", "security reviews", "test plans",
  "investor updates", "blog outlines", "accessibility audits", "SQL migrations", "roadmaps",
] as const;

export const AUDIENCES = [
  "small teams", "new managers", "solo founders", "support leads", "backend engineers",
  "designers", "data analysts", "product managers", "writers", "students",
] as const;

/** Title patterns; `{t}` is a topic, `{a}` an audience, `{n}` a small number. */
export const TITLE_PATTERNS = [
  "How to write better {t}",
  "{t}: a practical guide for {a}",
  "{n} mistakes {a} make with {t}",
  "Why {t} matter more than you think",
  "A one-page brief on {t}",
  "Getting started with {t} for {a}",
  "{n} templates for {t}",
  "What we learned rewriting our {t}",
] as const;

export const SENTENCES = [
  "Start with the outcome the reader needs, then work backwards to the details.",
  "Keep each section short enough to read on a phone between two meetings.",
  "Name the owner of every decision so that nothing waits on a guess.",
  "Show one concrete example before any general rule.",
  "Cut every paragraph that repeats the heading above it.",
  "Link the sources so that a sceptical reader can check the numbers.",
  "Ask a colleague who was not in the room to read the draft first.",
  "End with the next step and the date it is due.",
  "Prefer plain words: the reader is busy, not slow.",
  "Measure what changed a week later and write it down.",
] as const;

export const REVIEW_COMMENTS: Readonly<Record<1 | 2 | 3 | 4 | 5, readonly string[]>> = {
  1: ["Not useful for my case.", "Too vague to act on.", "Mostly filler."],
  2: ["Some good points, but hard to follow.", "Needed more examples."],
  3: ["Decent overview.", "Fine, if a little long.", "Useful checklist at the end."],
  4: ["Clear and practical.", "Saved me an afternoon.", "Good examples, will reuse."],
  5: ["Exactly what I needed.", "Shared it with the whole team.", "The best brief on this I have read."],
};

export const CREDIT_REASONS = ["top-up", "monthly grant", "referral bonus", "refund"] as const;
export const DEDUCT_REASONS = ["brief generation", "brief regeneration", "export to PDF"] as const;
export const OPENING_REASON = "opening balance";
