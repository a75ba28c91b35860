import onnxProto from 'onnx-proto';
import type { TrainerKind } from './types.ts';

const { onnx } = onnxProto;

/** A model in raw feature units: output = weights·x + bias (then Sigmoid when logistic). */
export interface OnnxLinearModel {
  kind: TrainerKind;
  featureCount: number;
  weights: Float32Array;
  bias: number;
  metadata: Record<string, string>;
}

// IR 8 / opset 15 is the pair ONNX 1.10 writes; every onnxruntime since 1.10 loads it.
const IR_VERSION = 8;
const OPSET = 15;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

/** Serializes a ModelProto with graph input·W + B (→ Sigmoid) and the metadata as metadata_props. */
export function writeOnnx(model: OnnxLinearModel): Uint8Array {
  const k = model.featureCount;
  const logistic = model.kind === 'logistic';
  const output = logistic ? 'probability' : 'variable';
  const node: onnxProto.onnx.INodeProto[] = [
    { opType: 'MatMul', input: ['input', 'weights'], output: ['matmul'], name: 'matmul' },
    { opType: 'Add', input: ['matmul', 'bias'], output: [logistic ? 'logit' : output], name: 'add' },
  ];
  if (logistic) node.push({ opType: 'Sigmoid', input: ['logit'], output: [output], name: 'sigmoid' });

  const proto = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'warden',
    graph: {
      name: `warden_${model.kind}`,
      node,
      initializer: [
        { name: 'weights', dataType: FLOAT, dims: [k, 1], floatData: Array.from(model.weights) },
        { name: 'bias', dataType: FLOAT, dims: [1], floatData: [model.bias] },
      ],
      input: [floatMatrix('input', k)],
      output: [floatMatrix(output, 1)],
    },
    metadataProps: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(proto).finish();
}

/** The metadata_props of a serialized ONNX model as a plain object. */
export function readOnnxMetadataProps(bytes: Uint8Array): Record<string, string> {
  const model = onnx.ModelProto.decode(bytes);
  return Object.fromEntries(model.metadataProps.map((entry) => [entry.key ?? '', entry.value ?? '']));
}

function floatMatrix(name: string, columns: number): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: columns }] } } },
  };
}
