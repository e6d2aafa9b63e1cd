// `runtimes` scenario: the same small JSON answer in every runtime.
interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export async function handler(): Promise<Answer> {
  return { status: 200, headers: { "content-type": "application/json" }, body: '{"ok":true}' };
}
