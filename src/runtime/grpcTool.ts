import * as grpc from "@grpc/grpc-js";
import { context, propagation } from "@opentelemetry/api";
import { currentToolCallTrace } from "./current.ts";
import { traceparentOf } from "./httpTool.ts";
import { defineTool, type ToolCallContext, type ToolDefinition } from "./tools.ts";

/**
 * grpcTool: a tool that makes one unary call on a @grpc/grpc-js client, the
 * gRPC sibling of httpTool. It is a `defineTool`, so every call goes through
 * ctx.tool like any other: allow list, budget, rate limits, the MCTC gate,
 * deadline-aware retries, parking on an unhealthy dependency, the span.
 *
 * Every call carries
 *   deadline            the workflow's deadline (`ctx.deadlineAt`), so the wire carries
 *                       `grpc-timeout` = the time left and the server can stop on time;
 *                       without a deadline, `timeoutMs` from now
 *   idempotency-key     the call's key (the same on a re-run of the same step, and on a retry)
 *   x-tenant-id         the tenant
 *   traceparent         the `fairlane.tool_call` span (plus tracestate/baggage with an SDK)
 *   x-request-deadline  the workflow's deadline, ISO 8601, when it has one
 * and is cancelled on the wire (`call.cancel()`) when the call's signal fires:
 * at the attempt timeout, on cancel or preemption, when a fan-out sibling fails,
 * at the deadline. It then rejects with the signal's reason, as fetch does.
 *
 * A failed call rejects with a GrpcToolError whose `code` is the status name:
 *   UNAVAILABLE          transient: the server or the connection is down or shedding load
 *   RESOURCE_EXHAUSTED   transient (a quota or rate limit), except a message-size limit,
 *                        which a retry of the same request only hits again
 *   DEADLINE_EXCEEDED    permanent; the runtime reports DEADLINE_EXCEEDED
 *   anything else        permanent. ABORTED included: gRPC means "retry at a higher level"
 *                        (re-read, then write), which re-sending the same request is not;
 *                        pass `isTransient` to decide otherwise for a service you know.
 * `status` is the HTTP equivalent of the code (google.rpc mapping), so passive
 * health reads 503/429 as overload exactly as it does for httpTool. Neither the
 * message nor the error keeps the server's details or trailers: they may echo a
 * payload. Nothing here logs.
 *
 * Do not also turn on grpc-js's own retryPolicy in the channel's service config:
 * ctx.tool already retries within the deadline, and the two would multiply.
 *
 * Example, with a proto-loader client (a generated grpc-tools or ts-proto client
 * works the same: `method` is the name of its method):
 *
 *   const pkg = grpc.loadPackageDefinition(protoLoader.loadSync("weather.proto")) as any;
 *   let weather: grpc.Client | undefined; // created on first use, closed by its owner
 *   grpcTool<{ city: string }, { tempC: number }>({
 *     name: "weather.lookup",
 *     dependency: "weather",
 *     timeoutMs: 5_000,
 *     client: () => (weather ??= new pkg.weather.Weather("weather:50051", grpc.credentials.createInsecure())),
 *     method: "Lookup",
 *     request: (args) => ({ city: args.city }),
 *   });
 *   // in a workflow: const r = await ctx.tool<{ tempC: number }>("weather.lookup", { city: "Oslo" });
 */

export type GrpcStatusName = keyof typeof grpc.status;

/** A failed gRPC call: the status, never its details. */
export class GrpcToolError extends Error {
  /** The gRPC status code as a number (grpc.status). */
  readonly grpcCode: number;
  /** The HTTP equivalent (google.rpc mapping): passive health reads 503 and 429 as overload. */
  readonly status: number;
  readonly transient: boolean;
  constructor(
    readonly code: GrpcStatusName | `STATUS_${number}`,
    grpcCode: number,
    transient: boolean,
    method: string,
  ) {
    super(`gRPC ${method} failed: ${code}`);
    this.name = "GrpcToolError";
    this.grpcCode = grpcCode;
    this.status = HTTP_EQUIVALENT[grpcCode] ?? 500;
    this.transient = transient;
  }
}

const HTTP_EQUIVALENT: Record<number, number> = {
  [grpc.status.CANCELLED]: 499,
  [grpc.status.INVALID_ARGUMENT]: 400,
  [grpc.status.DEADLINE_EXCEEDED]: 504,
  [grpc.status.NOT_FOUND]: 404,
  [grpc.status.ALREADY_EXISTS]: 409,
  [grpc.status.PERMISSION_DENIED]: 403,
  [grpc.status.RESOURCE_EXHAUSTED]: 429,
  [grpc.status.FAILED_PRECONDITION]: 400,
  [grpc.status.ABORTED]: 409,
  [grpc.status.OUT_OF_RANGE]: 400,
  [grpc.status.UNIMPLEMENTED]: 501,
  [grpc.status.UNAVAILABLE]: 503,
  [grpc.status.UNAUTHENTICATED]: 401,
};

/** Whether a status is worth a retry of the same request (see the header). */
export function grpcTransient(code: number, details = ""): boolean {
  if (code === grpc.status.UNAVAILABLE) return true;
  // grpc-js reports a message over the send or receive size limit as RESOURCE_EXHAUSTED too.
  if (code === grpc.status.RESOURCE_EXHAUSTED) return !/larger than/i.test(details);
  return false;
}

/** A ServiceError as a GrpcToolError: status name, transient or not, details dropped. */
export function grpcToolError(err: Partial<grpc.ServiceError>, method: string): GrpcToolError {
  const code = typeof err.code === "number" ? err.code : grpc.status.UNKNOWN;
  const name = (grpc.status[code] as GrpcStatusName | undefined) ?? (`STATUS_${code}` as const);
  return new GrpcToolError(name, code, grpcTransient(code, err.details), method);
}

/** What makeGenericClientConstructor puts on a client's prototype: the call, with its method definition. */
type ClientMethod = ((
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, value?: unknown) => void,
) => grpc.ClientUnaryCall) &
  Partial<Pick<grpc.MethodDefinition<unknown, unknown>, "path" | "requestStream" | "responseStream">>;

/** The tool's default when neither the workflow nor the tool sets a time: the runtime's default attempt timeout. */
const DEFAULT_TIMEOUT_MS = 30_000;

export function grpcTool<A = Record<string, unknown>, R = unknown>(o: {
  name: string;
  dependency?: string;
  costUsd?: number;
  timeoutMs?: number;
  /** The client; called on every call, so create it on first use and cache it (its owner closes it). */
  client: () => grpc.Client;
  /** A unary method of the client, as the client names it ("Lookup" or "lookup" with proto-loader); checked on each call. */
  method: string;
  /** The request message from the tool's args; the args themselves by default. */
  request?: (args: A) => unknown;
  /** The tool's value from the response message; the message itself by default. */
  response?: (message: unknown) => R;
  /** Which errors to retry; by default defaultTransient: a GrpcToolError with `transient`, an attempt timeout. */
  isTransient?: (err: unknown) => boolean;
}): ToolDefinition<A, R> {
  return defineTool<A, R>({
    name: o.name,
    dependency: o.dependency,
    costUsd: o.costUsd,
    timeoutMs: o.timeoutMs,
    isTransient: o.isTransient,
    async run(args: A, ctx: ToolCallContext) {
      ctx.signal.throwIfAborted();
      const client = o.client();
      const fn = (client as unknown as Record<string, ClientMethod | undefined>)[o.method];
      if (typeof fn !== "function" || typeof fn.path !== "string" || fn.requestStream || fn.responseStream)
        throw new Error(`gRPC ${o.method} is not a unary method of the client`);
      const metadata = metadataFor(ctx);
      const deadline = ctx.deadlineAt ?? Date.now() + (o.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      const request = o.request ? o.request(args) : args;
      return new Promise<R>((resolve, reject) => {
        const onAbort = () => {
          reject(ctx.signal.reason);
          call.cancel(); // RST_STREAM: the server sees the call cancelled; our callback then gets CANCELLED, ignored
        };
        const call = fn.call(client, request, metadata, { deadline }, (err, value) => {
          ctx.signal.removeEventListener("abort", onAbort);
          if (ctx.signal.aborted) return reject(ctx.signal.reason); // already rejected by onAbort
          if (err) return reject(grpcToolError(err, o.method));
          try {
            resolve(o.response ? o.response(value) : (value as R));
          } catch (mapErr) {
            reject(mapErr);
          }
        });
        ctx.signal.addEventListener("abort", onAbort, { once: true });
      });
    },
  });
}

function metadataFor(ctx: ToolCallContext): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("idempotency-key", ctx.idempotencyKey);
  metadata.set("x-tenant-id", ctx.tenant);
  metadata.set("traceparent", traceparentOf(ctx));
  const carrier: Record<string, string> = {};
  propagation.inject(currentToolCallTrace() ?? context.active(), carrier); // a no-op without an SDK
  for (const [key, value] of Object.entries(carrier)) metadata.set(key.toLowerCase(), value);
  if (ctx.deadlineAt !== null) metadata.set("x-request-deadline", new Date(ctx.deadlineAt).toISOString());
  return metadata;
}
