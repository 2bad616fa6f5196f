import { once } from "node:events";
import type { Response } from "express";

/**
 * Streams pages as NDJSON (`application/x-ndjson`, one JSON value per line) from `cursor` to the newest: a
 * page at a time, each written as fast as the client reads it, and no further once it has gone away. For
 * the exports (audit trail, ended workflows), whose cursor a client resumes after.
 */
export async function streamPages<T>(
  res: Response,
  cursor: string | undefined,
  page: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>,
): Promise<void> {
  res.setHeader("Content-Type", "application/x-ndjson; charset=utf-8");
  res.setHeader("Cache-Control", "no-store");
  let gone = false;
  res.on("close", () => {
    gone = true;
  });
  for (;;) {
    const p = await page(cursor);
    for (const item of p.items) if (!res.write(`${JSON.stringify(item)}\n`)) await drained(res);
    if (gone || !p.nextCursor) break;
    cursor = p.nextCursor;
  }
  res.end();
}

async function drained(res: Response): Promise<void> {
  if (res.destroyed) return;
  await Promise.race([once(res, "drain"), once(res, "close")]);
}
