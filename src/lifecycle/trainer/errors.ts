/** Stable codes for the ways a training request can be wrong; the CLI maps all of them to exit code 2. */
export type TrainerErrorCode =
  | 'WARDEN_TRAIN_CSV_UNREADABLE'
  | 'WARDEN_TRAIN_UNKNOWN_COLUMN'
  | 'WARDEN_TRAIN_NON_NUMERIC_COLUMN'
  | 'WARDEN_TRAIN_EMPTY_DATASET'
  | 'WARDEN_TRAIN_BAD_OPTION'
  | 'WARDEN_TRAIN_OUTPUT_UNWRITABLE';

/** A problem with the caller's data or options (as opposed to a bug): the message says what to change. */
export class TrainerError extends Error {
  override readonly name = 'TrainerError';
  constructor(
    readonly code: TrainerErrorCode,
    message: string,
  ) {
    super(message);
  }
}
