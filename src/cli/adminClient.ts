/**
 * The on-call CLI's HTTP client of the admin API: the admin token as a Bearer
 * token (src/cli/adminToken.ts says where it comes from), the operator's name in
 * X-Fairlane-Operator (--operator, default $USER) so the audit log says who.
 */
export interface AdminTarget {
  url: string;
  token?: string;
  operator?: string;
  /** Where the token came from, named (never shown) when the API refuses it. */
  tokenSource?: string;
}

export class AdminApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export class AdminClient {
  constructor(private readonly t: AdminTarget & { token: string }) {}

  async call<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.t.token}`, accept: "application/json" };
    // The API checks the name (and says what is wrong with it); a header carries bytes, so send its UTF-8.
    if (this.t.operator) headers["x-fairlane-operator"] = Buffer.from(this.t.operator, "utf8").toString("latin1");
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(new URL(path, this.t.url), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      throw new AdminApiError(0, "UNREACHABLE", `cannot reach ${this.t.url}: ${(err as Error).cause ?? (err as Error).message}`);
    }
    const text = await res.text();
    let data: any;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (!res.ok) {
      const e = data?.error;
      const from = res.status === 401 && this.t.tokenSource ? ` (the admin token came from ${this.t.tokenSource})` : "";
      throw new AdminApiError(res.status, e?.code ?? `HTTP_${res.status}`, (e?.message ?? `HTTP ${res.status}`) + from, e?.details);
    }
    return data as T;
  }
}
