import { enc } from '../api.ts';
import type { ViewProps } from '../app.tsx';
import '../components/deployments.css';
import { Badge, Empty, ErrorNote, Loading, Panel } from '../components/ui.tsx';
import { fmtAgo, fmtNum, fmtTime } from '../format.ts';
import { useApi } from '../refresh.ts';
import { href } from '../router.ts';
import './registry.css';

interface Alias {
  model: string;
  alias: string;
  version: number;
  updatedAt: number;
}

interface ModelSummary {
  name: string;
  description: string;
  createdAt: number;
  latestVersion: number | null;
  versionCount: number;
  aliases: Alias[];
}

interface TensorSpec {
  name: string;
  datatype: string;
  shape: number[];
}

interface FeatureSpec {
  name: string;
  datatype: string;
  min?: number;
  max?: number;
  mean?: number;
  std?: number;
}

interface Version {
  model: string;
  version: number;
  sha256: string;
  sizeBytes: number;
  format: string;
  signature: { inputs: TensorSpec[]; outputs: TensorSpec[]; features?: FeatureSpec[] };
  metadata: {
    description?: string;
    params?: Record<string, string | number | boolean>;
    metrics?: Record<string, number>;
    trainingDataSha256?: string;
    sourceCommit?: string;
    tags?: Record<string, string>;
  };
  createdAt: number;
}

interface ModelDetail {
  name: string;
  description: string;
  createdAt: number;
  versions: Version[];
  aliases: Alias[];
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

const shape = (s: number[]) => `[${s.map((d) => (d < 0 ? 'N' : String(d))).join(', ')}]`;
const short = (v: number | undefined) => (v === undefined ? '—' : String(Number(v.toPrecision(4))));
const num = (v: number | undefined) => (v === undefined ? '—' : String(Number(v.toPrecision(6))));

export function RegistryView({ route }: ViewProps) {
  const models = useApi<{ models: ModelSummary[] }>('/api/v1/models');
  const list = models.data?.models ?? [];
  const name = route.params.get('model') || list[0]?.name || '';
  const detail = useApi<ModelDetail>(name ? `/api/v1/models/${enc(name)}` : null);
  const versions = detail.data?.versions ?? [];
  const vParam = route.params.get('version');
  const version = versions.find((v) => String(v.version) === vParam) ?? versions.at(-1);
  const aliasesOf = (v: number) => (detail.data?.aliases ?? []).filter((a) => a.version === v);

  return (
    <>
      <div class="view-head">
        <h1>Registry</h1>
        <span class="muted">Models and their immutable, content-addressed versions</span>
      </div>
      <Panel title="Models" id="models" wide>
        <ErrorNote error={models.error} what="Could not list models" />
        {!models.data && models.loading ? <Loading what="models" /> : null}
        {models.data && list.length === 0 ? (
          <Empty>
            No models registered. Push one with <code>warden push model.onnx --model NAME</code> (or <code>POST /api/v1/models/NAME/versions</code>).
          </Empty>
        ) : null}
        {list.length > 0 ? (
          <table data-testid="models">
            <thead>
              <tr>
                <th scope="col">model</th>
                <th scope="col">description</th>
                <th scope="col" class="num">versions</th>
                <th scope="col" class="num">latest</th>
                <th scope="col">aliases</th>
                <th scope="col">created</th>
              </tr>
            </thead>
            <tbody>
              {list.map((m) => (
                <tr key={m.name} class={m.name === name ? 'selected' : undefined} data-model={m.name}>
                  <th scope="row">
                    <a href={href('/registry', { model: m.name })} aria-current={m.name === name ? 'true' : undefined}>
                      {m.name}
                    </a>
                  </th>
                  <td>{m.description || <span class="muted">none</span>}</td>
                  <td class="num" data-testid={`model-versions-${m.name}`}>
                    {fmtNum(m.versionCount)}
                  </td>
                  <td class="num">{m.latestVersion === null ? '—' : `v${m.latestVersion}`}</td>
                  <td>
                    {m.aliases.length ? (
                      m.aliases.map((a) => (
                        <Badge key={a.alias} tone="info">
                          {a.alias} → v{a.version}
                        </Badge>
                      ))
                    ) : (
                      <span class="muted">none</span>
                    )}
                  </td>
                  <td>{fmtTime(m.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </Panel>
      {name ? (
        <Panel title={`${name}: versions`} id="versions" wide>
          <ErrorNote error={detail.error} what={`Could not read model ${name}`} />
          {!detail.data && detail.loading ? <Loading what="versions" /> : null}
          {detail.data && versions.length === 0 ? (
            <Empty>
              {name} has no versions yet; push one with <code>warden push model.onnx --model {name}</code>.
            </Empty>
          ) : null}
          {versions.length > 0 ? (
            <table data-testid="versions">
              <thead>
                <tr>
                  <th scope="col">version</th>
                  <th scope="col">sha256</th>
                  <th scope="col" class="num">size</th>
                  <th scope="col">created</th>
                  <th scope="col">aliases</th>
                  <th scope="col">description</th>
                </tr>
              </thead>
              <tbody>
                {[...versions].reverse().map((v) => (
                  <tr key={v.version} class={v.version === version?.version ? 'selected' : undefined}>
                    <th scope="row">
                      <a href={href('/registry', { model: name, version: String(v.version) })} aria-current={v.version === version?.version ? 'true' : undefined}>
                        v{v.version}
                      </a>
                    </th>
                    <td class="mono" data-testid={`version-sha-${v.version}`}>
                      {v.sha256}
                    </td>
                    <td class="num" data-testid={`version-size-${v.version}`} title={`${fmtNum(v.sizeBytes)} bytes`}>
                      {fmtBytes(v.sizeBytes)}
                    </td>
                    <td>
                      {fmtTime(v.createdAt)} <span class="muted">({fmtAgo(v.createdAt)})</span>
                    </td>
                    <td>
                      {aliasesOf(v.version).map((a) => (
                        <Badge key={a.alias} tone="info">
                          {a.alias}
                        </Badge>
                      ))}
                    </td>
                    <td>{v.metadata.description ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
        </Panel>
      ) : null}
      {version ? <VersionPanels v={version} aliases={aliasesOf(version.version)} /> : null}
    </>
  );
}

function VersionPanels(props: { v: Version; aliases: Alias[] }) {
  const { v } = props;
  const md = v.metadata;
  const features = v.signature.features ?? [];
  const params = Object.entries(md.params ?? {});
  const metrics = Object.entries(md.metrics ?? {});
  const tags = Object.entries(md.tags ?? {});
  return (
    <div class="registry-pair">
      <Panel title={`${v.model} v${v.version}: signature`} id="signature">
        <h3>Inputs</h3>
        <TensorTable specs={v.signature.inputs} testid="sig-inputs" />
        <h3>Outputs</h3>
        <TensorTable specs={v.signature.outputs} testid="sig-outputs" />
        <h3>Named features</h3>
        {features.length === 0 ? (
          <Empty>No named features: callers send tensors (<code>/v2/…/infer</code>), not <code>:predict</code> instances.</Empty>
        ) : (
          <table data-testid="sig-features">
            <thead>
              <tr>
                <th scope="col">column</th>
                <th scope="col">feature</th>
                <th scope="col">datatype</th>
                <th scope="col" class="num">min</th>
                <th scope="col" class="num">max</th>
                <th scope="col" class="num">mean</th>
                <th scope="col" class="num">std</th>
              </tr>
            </thead>
            <tbody>
              {features.map((f, i) => (
                <tr key={f.name}>
                  <td class="num">{i}</td>
                  <th scope="row">{f.name}</th>
                  <td>{f.datatype}</td>
                  <td class="num" data-testid={`feature-min-${f.name}`}>
                    {num(f.min)}
                  </td>
                  <td class="num" data-testid={`feature-max-${f.name}`}>
                    {num(f.max)}
                  </td>
                  <td class="num">{short(f.mean)}</td>
                  <td class="num">{short(f.std)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Panel>
      <Panel
        title={`${v.model} v${v.version}: metadata and lineage`}
        id="metadata"
        actions={
          <a href={href('/card', { model: v.model, version: String(v.version) })} data-testid="card-link">
            Model card
          </a>
        }
      >
        <dl class="kv" data-testid="lineage">
          <dt>sha256</dt>
          <dd class="mono">{v.sha256}</dd>
          <dt>format</dt>
          <dd>{v.format}</dd>
          <dt>aliases</dt>
          <dd>{props.aliases.length ? props.aliases.map((a) => `${a.alias} (since ${fmtTime(a.updatedAt)})`).join(', ') : <span class="muted">none</span>}</dd>
          <dt>training data sha256</dt>
          <dd class="mono" data-testid="lineage-data">
            {md.trainingDataSha256 ?? <span class="muted">not recorded</span>}
          </dd>
          <dt>source commit</dt>
          <dd class="mono" data-testid="lineage-commit">
            {md.sourceCommit ?? <span class="muted">not recorded</span>}
          </dd>
          {md.description ? (
            <>
              <dt>description</dt>
              <dd>{md.description}</dd>
            </>
          ) : null}
        </dl>
        <h3>Offline metrics</h3>
        {metrics.length ? <KvTable rows={metrics} testid="metric" /> : <Empty>No offline metrics recorded (push with <code>--metadata meta.json</code>).</Empty>}
        <h3>Parameters</h3>
        {params.length ? <KvTable rows={params} testid="param" /> : <Empty>No training parameters recorded.</Empty>}
        <h3>Tags</h3>
        {tags.length ? <KvTable rows={tags} testid="tag" /> : <Empty>No tags.</Empty>}
      </Panel>
    </div>
  );
}

function TensorTable(props: { specs: TensorSpec[]; testid: string }) {
  return (
    <table data-testid={props.testid}>
      <thead>
        <tr>
          <th scope="col">name</th>
          <th scope="col">datatype</th>
          <th scope="col">shape</th>
        </tr>
      </thead>
      <tbody>
        {props.specs.map((s) => (
          <tr key={s.name}>
            <th scope="row">{s.name}</th>
            <td>{s.datatype}</td>
            <td class="mono">{shape(s.shape)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function KvTable(props: { rows: [string, string | number | boolean][]; testid: string }) {
  return (
    <table class="kv-table">
      <tbody>
        {props.rows.map(([k, val]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td class="mono" data-testid={`${props.testid}-${k}`}>
              {typeof val === 'number' ? String(Number(val.toPrecision(6))) : String(val)}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
