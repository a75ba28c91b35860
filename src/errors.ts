/**
 * The catalogue of Warden error codes. Every error a user can see carries a stable code,
 * an HTTP status and a message that says what to do. `docs/errors.md` lists exactly these
 * codes; a test keeps the two in sync (the habit comes from Fastify's `lib/errors.js`).
 */

export const errorCatalogue = {
  WARDEN_BAD_REQUEST: { status: 400, summary: 'The request is malformed (JSON syntax, missing fields, wrong field types).' },
  WARDEN_BODY_TOO_LARGE: {
    status: 413,
    summary: "The request body is larger than the route's limit: `server.bodyLimitBytes`, or `server.uploadLimitBytes` for model files and `server.referenceLimitBytes` for reference data.",
  },
  WARDEN_UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'The request body is not JSON.' },
  WARDEN_INVALID_INPUT: { status: 400, summary: 'Inference inputs do not match the model signature (name, datatype, shape, value).' },
  WARDEN_MODEL_NOT_FOUND: { status: 404, summary: 'No model with that name is registered.' },
  WARDEN_VERSION_NOT_FOUND: { status: 404, summary: 'The model has no such version or alias.' },
  WARDEN_MODEL_NOT_READY: { status: 503, summary: 'The model version is registered but could not be loaded for serving.' },
  WARDEN_NOT_FOUND: { status: 404, summary: 'No route or resource at that path.' },
  WARDEN_CONFLICT: { status: 409, summary: 'The change conflicts with current state (e.g. deleting a version an alias points to).' },
  WARDEN_INVALID_MODEL: { status: 422, summary: 'The uploaded file is not a loadable ONNX model, or its metadata is invalid.' },
  WARDEN_ARTIFACT_TAMPERED: { status: 500, summary: 'A stored model file no longer matches its sha256 digest; it is refused.' },
  WARDEN_UNAUTHENTICATED: { status: 401, summary: 'The route needs an API key (header `authorization: Bearer <key>` or `x-api-key`).' },
  WARDEN_KEY_EXPIRED: {
    status: 401,
    summary: 'The API key expired, or this is its old secret after a rotation and the overlap has ended; the message says which and when. Use the new secret or create a key.',
  },
  WARDEN_FORBIDDEN: { status: 403, summary: "The API key's role does not allow this action, or the key is scoped to other models." },
  WARDEN_RATE_LIMITED: {
    status: 429,
    summary: "Too many requests or uploads in flight, or the key's or deployment's rate limit is spent on this replica; retry after the `Retry-After` seconds.",
  },
  WARDEN_QUOTA_EXCEEDED: {
    status: 429,
    summary: "The key or deployment has used its quota of inference requests for the UTC day or month; retry after the `Retry-After` seconds, when the period starts again, or ask an admin to raise the quota.",
  },
  WARDEN_BUDGET_EXCEEDED: {
    status: 429,
    summary: "The deployment has spent its daily or monthly cost budget and its cap throttles it (or, with a `route` cap, it serves only the cheaper version); retry after the `Retry-After` seconds, when the budget's period starts again.",
  },
  WARDEN_SHUTTING_DOWN: { status: 503, summary: 'The server is shutting down; retry (another replica, or this one once restarted).' },
  WARDEN_STORE_UNAVAILABLE: {
    status: 503,
    summary: 'A write could not be stored (disk full, read-only or missing data directory, store locked); the message names the cause and the fix. Predictions keep being served.',
  },
  WARDEN_INFERENCE_FAILED: { status: 500, summary: 'The runtime failed while running the model.' },
  WARDEN_TRAIN_CSV_UNREADABLE: { status: 400, summary: 'The training CSV cannot be read or parsed.' },
  WARDEN_TRAIN_UNKNOWN_COLUMN: { status: 400, summary: 'A target, feature or filter column is not in the CSV header.' },
  WARDEN_TRAIN_NON_NUMERIC_COLUMN: { status: 400, summary: 'A column chosen for training holds values that are not numbers.' },
  WARDEN_TRAIN_EMPTY_DATASET: { status: 400, summary: 'No rows are left to train on after filtering and the holdout split.' },
  WARDEN_TRAIN_BAD_OPTION: { status: 400, summary: 'A trainer option is out of range or does not apply to the model kind.' },
  WARDEN_TRAIN_OUTPUT_UNWRITABLE: { status: 400, summary: 'The output path for the trained .onnx file cannot be written.' },
  WARDEN_TOO_MANY_LABELS: { status: 413, summary: 'A label batch holds more than 10,000 labels; split it into several calls.' },
  WARDEN_FAULT_INJECTED: { status: 503, summary: 'A game day deliberately failed this request (fault `errors`); see `GET /api/v1/gamedays`.' },
  WARDEN_GAMEDAY_RUNNING: { status: 409, summary: 'A game day is already running on this deployment; stop it (`DELETE /api/v1/gamedays/{id}`) or wait for it to end.' },
  WARDEN_DASHBOARD_NOT_BUILT: { status: 503, summary: 'The dashboard has not been built on this install; run `npm run build:web` (npm install and npm start build it).' },
  WARDEN_CONFIG_INVALID: { status: 500, summary: 'The configuration file or WARDEN_* environment is invalid; the server refuses to start.' },
  WARDEN_DATASET_EMPTY: { status: 422, summary: 'No labelled prediction matches the export: check the model, versions, time range and label sources.' },
  WARDEN_INTERNAL: { status: 500, summary: 'An unexpected server error; the log has the details under the request id.' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

/** An error a user can act on: stable code, HTTP status, plain message. */
export class WardenError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'WardenError';
    this.code = code;
    this.status = errorCatalogue[code].status;
    if (details) this.details = details;
  }
}

/** True when `e` is a WardenError (also across module copies, by shape). */
export function isWardenError(e: unknown): e is WardenError {
  return e instanceof WardenError;
}
