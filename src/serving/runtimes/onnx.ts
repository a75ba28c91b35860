import ort from 'onnxruntime-node';
import { WardenError } from '../../errors.ts';
import type { DecodedTensor } from '../../quality/index.ts';
import type { TensorSpec } from '../../storage/index.ts';

const OIP_TO_ORT: Record<string, ort.Tensor.Type> = {
  FP32: 'float32',
  FP64: 'float64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  BOOL: 'bool',
  BYTES: 'string',
};

export interface OutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  /** Plain JS values, ready for JSON (int64 as numbers). */
  data: number[] | string[] | boolean[];
}

export interface OnnxSessionOptions {
  intraOpThreads: number;
}

/** A warm onnxruntime session for one model version. Created once, reused for every request. */
export class OnnxModel {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly outputs: readonly TensorSpec[],
  ) {}

  static async load(bytes: Uint8Array, outputs: readonly TensorSpec[], opts: OnnxSessionOptions): Promise<OnnxModel> {
    try {
      const session = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: opts.intraOpThreads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
      return new OnnxModel(session, outputs);
    } catch (e) {
      throw new WardenError('WARDEN_MODEL_NOT_READY', `onnxruntime could not load the model: ${(e as Error).message}`);
    }
  }

  /** Runs the model on already-validated tensors and returns the requested outputs (all when none named). */
  async run(inputs: readonly DecodedTensor[], outputNames?: readonly string[]): Promise<OutputTensor[]> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of inputs) {
      // The typed array's element type matches OIP_TO_ORT[t.datatype] by construction in decodeTensor.
      feeds[t.name] = new ort.Tensor(OIP_TO_ORT[t.datatype]!, t.data as ort.Tensor.DataType, t.dims);
    }
    const names = outputNames && outputNames.length ? outputNames : this.outputs.map((o) => o.name);
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      results = await this.session.run(feeds, names as string[]);
    } catch (e) {
      throw new WardenError('WARDEN_INFERENCE_FAILED', `model run failed: ${(e as Error).message}`);
    }
    const out: OutputTensor[] = [];
    for (const name of names) {
      const tensor = results[name]!;
      const spec = this.outputs.find((o) => o.name === name);
      out.push({
        name,
        datatype: spec?.datatype ?? 'FP32',
        shape: tensor.dims.map(Number),
        data: spec?.datatype === 'BOOL' ? Array.from(tensor.data as Uint8Array, Boolean) : toPlain(tensor.data),
      });
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function toPlain(data: ort.Tensor.DataType): number[] | string[] | boolean[] {
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Array.from(data, Number);
  if (Array.isArray(data)) return data as string[];
  if (data instanceof Uint8Array) return Array.from(data);
  return Array.from(data as Float32Array);
}
