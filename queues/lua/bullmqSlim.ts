/**
 * BullMQ 6.7's moveToActive and moveToFinished as the exec consumer runs them (execConsume.ts): BullMQ's
 * own scripts, less the steps an exec queue never needs. BullMQ is a general library, so each fetch and
 * finish also serves features Fairlane's exec queues do not use:
 *   - events: a finish appends "completed" or "failed" (and "retries-exhausted", "drained") to the
 *     queue's events stream and trims it; a fetch appends "active". Nothing reads an exec queue's events
 *     (no QueueEvents; Bull Board reads jobs and lists, not events). Nothing else appends to them on the
 *     hot path, so there is nothing left to trim either.
 *   - delayed and prioritized jobs: every fetch looks for delayed jobs to promote, and one that finds
 *     the wait list empty pops the `prioritized` set and reads the next delayed job's time. An exec job
 *     is never delayed nor prioritized: admission writes it with delay 0 and priority 0, and its opts
 *     ("{}") give it BullMQ's default of no retry and no backoff (src/exec/execWorker.ts), so BullMQ
 *     never moves it to `delayed` for a retry.
 *   - flows and deduplication: a completing job checks it has no pending children, and reads its parent
 *     and deduplication id; a removed job's children's keys are deleted with it. An exec job has none of
 *     them (includes/moveJob.lua writes its hash).
 *   - the attempt count of a job removed at its finish (removeOnComplete / removeOnFail): counted, then
 *     deleted with the job.
 * Kept as BullMQ wrote them: the lock and its token, `stalled`, `active`, `completed` / `failed` and
 * removeOnComplete / removeOnFail, `atm` / `ats`, `processedOn` / `finishedOn`, the pause and global
 * concurrency check, the rate limiter, the marker that wakes the next worker, the reply. So Bull Board,
 * lock renewal and BullMQ's stalled-job recovery see the same keys as with BullMQ's own scripts.
 *
 * Measured (docs/benchmarks.md, 2026-12-04): Redis commands per drained workflow 57.4–57.9 → 49.0–49.2,
 * Redis CPU per workflow 4–7 % lower. The last two edits (INFO commandstats over a 20,000-workflow drain,
 * 10 tenants): the scripts' Redis time per workflow 132 → 123 µs (10,000 tenants: 171 → 158), most of it
 * the finish's DEL, 5.1 → 2.1 µs (each key it names is looked up, present or not).
 *
 * Each edit names the exact text it replaces and how often BullMQ's script holds it. A BullMQ upgrade that
 * changes any of them fails at load, naming the edit, rather than running a script half edited.
 */

interface Edit {
  /** The scripts it applies to. */
  in: readonly ("moveToActive" | "moveToFinished")[];
  /** Exact text in BullMQ's script, and how many times it occurs there. */
  find: string;
  times: number;
  replace: string;
  why: string;
}

const EDITS: readonly Edit[] = [
  {
    in: ["moveToFinished"],
    why: "an exec job never has children (flows)",
    find: `        if rcall("SCARD", jobIdKey .. ":dependencies") ~= 0 then
            return -4
        end
        if rcall("ZCARD", jobIdKey .. ":unsuccessful") ~= 0 then
            return -9
        end
`,
    times: 1,
    replace: "",
  },
  {
    in: ["moveToFinished"],
    why: "an exec job has no parent and no deduplication id (the dispatch writes only name, data, opts, times)",
    find: `    local jobAttributes = rcall("HMGET", jobIdKey, "parentKey", "parent", "deid")\n`,
    times: 1,
    replace: "    local jobAttributes = {}\n",
  },
  {
    in: ["moveToFinished"],
    why: "nothing appends to an exec queue's events stream: nothing to trim",
    find: "    trimEvents(metaKey, eventStreamKey)\n",
    times: 1,
    replace: "",
  },
  {
    in: ["moveToFinished"],
    why: 'no "completed" / "failed" event',
    find: `    rcall("XADD", eventStreamKey, "*", "event", ARGV[5], "jobId", jobId, ARGV[3], ARGV[4], "prev", "active")\n`,
    times: 1,
    replace: "",
  },
  {
    in: ["moveToFinished"],
    why: 'no "retries-exhausted" event',
    find: `            rcall("XADD", eventStreamKey, "*", "event", "retries-exhausted", "jobId", jobId, "attemptsMade",
                attemptsMade)
`,
    times: 1,
    replace: "",
  },
  {
    in: ["moveToFinished"],
    why: 'no "drained" event (and so no need to count the lists that decide it)',
    find: `    local waitLen = rcall("LLEN", KEYS[1])
    if waitLen == 0 then
        local activeLen = rcall("LLEN", KEYS[2])
        if activeLen == 0 then
            local prioritizedLen = rcall("ZCARD", KEYS[3])
            if prioritizedLen == 0 then
                rcall("XADD", eventStreamKey, "*", "event", "drained")
            end
        end
    end
`,
    times: 1,
    replace: "",
  },
  {
    in: ["moveToActive", "moveToFinished"],
    why: 'no "active" event',
    find: `  rcall("XADD", eventStreamKey, "*", "event", "active", "jobId", jobId, "prev", "waiting")\n`,
    times: 1,
    replace: "",
  },
  {
    in: ["moveToFinished"],
    why: "an exec job is never delayed: nothing to promote",
    find: `    promoteDelayedJobs(delayedKey, markerKey, waitKey, prioritizedKey,
        eventStreamKey, prefix, timestamp, pcKey, isPausedOrMaxed)
`,
    times: 1,
    replace: "",
  },
  {
    in: ["moveToActive"],
    why: "an exec job is never delayed: nothing to promote",
    find: `promoteDelayedJobs(delayedKey, markerKey, waitKey, KEYS[3], eventStreamKey, ARGV[1],
                   ARGV[2], KEYS[10], isPausedOrMaxed)
`,
    times: 1,
    replace: "",
  },
  {
    in: ["moveToFinished"],
    why: "a job removed at its finish (removeOnComplete / removeOnFail) keeps no attempt count",
    find: `    local attemptsMade = rcall("HINCRBY", jobIdKey, "atm", 1)\n`,
    times: 1,
    replace: `    local attemptsMade = 0\n    if maxCount ~= 0 then attemptsMade = rcall("HINCRBY", jobIdKey, "atm", 1) end\n`,
  },
  {
    in: ["moveToFinished"],
    why: "an exec job has no children: its hash and its logs are all there is to delete (as includes/moveJob.lua's deleteJob)",
    find: `  return rcall("DEL", jobKey, jobKey .. ':logs', jobKey .. ':dependencies',
    jobKey .. ':processed', jobKey .. ':failed', jobKey .. ':unsuccessful')
`,
    times: 1,
    replace: `  return rcall("DEL", jobKey, jobKey .. ':logs')\n`,
  },
  {
    in: ["moveToActive", "moveToFinished"],
    why: "an exec job is never delayed: a fetch that finds no job has no delayed job's time to report",
    find: `local function getNextDelayedTimestamp(delayedKey)
  local result = rcall("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
  if #result then
    local nextTimestamp = tonumber(result[2])
    if nextTimestamp ~= nil then
      return nextTimestamp / 0x1000
    end
  end
end
`,
    times: 1,
    replace: "local function getNextDelayedTimestamp(delayedKey)\n  return nil\nend\n",
  },
  {
    in: ["moveToActive", "moveToFinished"],
    why: "an exec job has priority 0 (includes/moveJob.lua): a fetch that finds the wait list empty has no prioritized job to take",
    find: `local function moveJobFromPrioritizedToActive(priorityKey, activeKey, priorityCounterKey)
  local prioritizedJob = rcall("ZPOPMIN", priorityKey)
  if #prioritizedJob > 0 then
    rcall("LPUSH", activeKey, prioritizedJob[1])
    return prioritizedJob[1]
  else
    rcall("DEL", priorityCounterKey)
  end
end
`,
    times: 1,
    replace: "local function moveJobFromPrioritizedToActive(priorityKey, activeKey, priorityCounterKey)\n  return nil\nend\n",
  },
  {
    in: ["moveToActive"],
    why: "its opts arrive as JSON (execConsume.ts: a msgpack Buffer makes ioredis build the whole call as Buffers)",
    find: "local opts = cmsgpack.unpack(ARGV[3])\n",
    times: 1,
    replace: "local opts = cjson.decode(ARGV[3])\n",
  },
  {
    in: ["moveToFinished"],
    why: "its opts arrive as JSON (execConsume.ts)",
    find: "    local opts = cmsgpack.unpack(ARGV[8])\n",
    times: 1,
    replace: "    local opts = cjson.decode(ARGV[8])\n",
  },
  {
    in: ["moveToFinished"],
    why: "its fields to update arrive as JSON (execConsume.ts)",
    find: "    local fieldsToUpdate = cmsgpack.unpack(msgpackedFields)\n",
    times: 1,
    replace: "    local fieldsToUpdate = cjson.decode(msgpackedFields)\n",
  },
];

/** BullMQ's script `name` (its Lua text `content`) without the steps above; throws when one does not match. */
export function slimBullmq(name: "moveToActive" | "moveToFinished", content: string): string {
  let out = content;
  for (const e of EDITS) {
    if (!e.in.includes(name)) continue;
    const parts = out.split(e.find);
    if (parts.length - 1 !== e.times)
      throw new Error(
        `BullMQ's ${name} script has changed: the step "${e.why}" occurs ${parts.length - 1} times, not ${e.times} ` +
          "(queues/lua/bullmqSlim.ts was written against BullMQ 6.7)",
      );
    out = parts.join(e.replace);
  }
  return out;
}
