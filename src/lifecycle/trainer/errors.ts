import { WardenError, type ErrorCode } from '../../errors.ts';

/** Stable codes for the ways a training request can be wrong; the CLI maps all of them to exit code 2. */
export type TrainerErrorCode = Extract<ErrorCode, `WARDEN_TRAIN_${string}`>;

/** A problem with the caller's data or options (as opposed to a bug): the message says what to change. */
export class TrainerError extends WardenError {
  declare readonly code: TrainerErrorCode;
  constructor(code: TrainerErrorCode, message: string) {
    super(code, message);
    this.name = 'TrainerError';
  }
}
