import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { WardenError } from '../errors.ts';
import type { FeatureSpec, ModelSignature, TensorSpec } from '../storage/index.ts';

const { onnx } = onnxProto;

/** onnxruntime tensor type → Open Inference Protocol datatype. */
const ORT_TO_OIP: Record<string, string> = {
  float32: 'FP32',
  float64: 'FP64',
  float16: 'FP16',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  bool: 'BOOL',
  string: 'BYTES',
};

export interface OnnxInspection {
  signature: ModelSignature;
  /** ModelProto.metadata_props (the trainer writes `warden.*` keys there). */
  metadataProps: Record<string, string>;
  producer: string;
}

function tensorSpec(meta: ort.InferenceSession.ValueMetadata): TensorSpec {
  if (!meta.isTensor) {
    throw new WardenError(
      'WARDEN_INVALID_MODEL',
      `model ${meta.name} is a non-tensor value (sequence or map); export the model with tensor outputs only (for scikit-learn classifiers: zipmap=False)`,
    );
  }
  const datatype = ORT_TO_OIP[meta.type];
  if (!datatype) throw new WardenError('WARDEN_INVALID_MODEL', `tensor ${meta.name} has unsupported element type ${meta.type}`);
  // A symbolic or unknown dimension comes back as a string (possibly empty): dynamic, so -1.
  const shape = meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
  return { name: meta.name, datatype, shape };
}

/** Reads the key/value metadata that an ONNX file carries, without running it. */
export function readOnnxMetadataProps(bytes: Uint8Array): Record<string, string> {
  const model = onnx.ModelProto.decode(bytes);
  const props: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) props[p.key] = p.value ?? '';
  return props;
}

function parseFeatureProps(raw: string | undefined): FeatureSpec[] | undefined {
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as { name: string; min?: number; max?: number; mean?: number; std?: number }[];
    if (!Array.isArray(parsed)) return undefined;
    // The trainer's min/max are the allowed range (training range plus its margin), enforced at the door.
    return parsed.map((f) => ({
      name: String(f.name),
      datatype: 'FP32',
      ...(typeof f.min === 'number' && Number.isFinite(f.min) ? { min: f.min } : {}),
      ...(typeof f.max === 'number' && Number.isFinite(f.max) ? { max: f.max } : {}),
      ...(typeof f.mean === 'number' ? { mean: f.mean } : {}),
      ...(typeof f.std === 'number' ? { std: f.std } : {}),
    }));
  } catch {
    return undefined;
  }
}

/**
 * Loads the bytes in onnxruntime to prove they are a runnable model and reads the signature
 * (input/output names, datatypes, shapes) from it, plus metadata props and named features.
 */
export async function inspectOnnx(bytes: Uint8Array): Promise<OnnxInspection> {
  const metadataProps: Record<string, string> = {};
  let producer = '';
  try {
    const model = onnx.ModelProto.decode(bytes);
    producer = model.producerName ?? '';
    for (const p of model.metadataProps ?? []) if (p.key) metadataProps[p.key] = p.value ?? '';
  } catch (e) {
    throw new WardenError('WARDEN_INVALID_MODEL', `file is not an ONNX model (protobuf decode failed: ${(e as Error).message})`);
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  } catch (e) {
    throw new WardenError('WARDEN_INVALID_MODEL', `onnxruntime cannot load the model: ${(e as Error).message}`);
  }
  try {
    const inputs = session.inputMetadata.map(tensorSpec);
    const outputs = session.outputMetadata.map(tensorSpec);
    const features = parseFeatureProps(metadataProps['warden.features']);
    const signature: ModelSignature = { inputs, outputs, ...(features ? { features } : {}) };
    return { signature, metadataProps, producer };
  } finally {
    await session.release();
  }
}
