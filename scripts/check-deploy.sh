#!/usr/bin/env bash
# Validates deploy/ with real tools. Run from the repository root:
#
#   scripts/check-deploy.sh
#
# One line per check ("ok", "FAIL" with the tool's output indented below it, or "skip" with the
# reason); exits 1 if any check failed.
#
#   promtool     check config (prometheus.yml, prometheus-kubernetes.yml), check rules,
#                test rules (alerts.test.yml), and the dashboard's queries parsed as rules.
#                Missing promtool fails unless SKIP_PROMTOOL=1 (Debian: apt-get install prometheus).
#   node         the dashboard (JSON, uid, datasource variable, panels), every tally_* metric and
#                label used in the dashboard, alerts and alert tests against src/core/metrics.ts
#                and src/controller/metrics.ts, every alert tested both ways, and the Kubernetes
#                manifests: JSON-schema validation from the Kubernetes OpenAPI (npm
#                kubernetes-models), unknown or mistyped fields (TypeScript against npm
#                kubernetes-types), and cross-references (selectors, ports, env, member names).
#                Those npm packages (and yaml) are installed once into TALLY_DEPLOY_TOOLS (default
#                ~/.cache/tally-check-deploy), not into the project; SKIP_K8S_SCHEMA=1 skips the
#                two schema checks.
#   kubectl      `kubectl kustomize deploy/kubernetes`, when kubectl is installed.
#   docker-compose  `docker-compose -f docker-compose.yml config -q`, when both exist.
set -euo pipefail

if [[ ! -d deploy || ! -f src/core/metrics.ts ]]; then
  echo "check-deploy: run from the repository root (scripts/check-deploy.sh)" >&2
  exit 2
fi

failures=0
ok() { printf 'ok    %s\n' "$1"; }
skip() { printf 'skip  %s\n' "$1"; }
fail() {
  printf 'FAIL  %s\n' "$1"
  failures=$((failures + 1))
}
# check NAME COMMAND...: one line; on failure the command's output, indented.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    ok "$name"
  else
    fail "$name"
    printf '%s\n' "$out" | sed 's/^/      /'
  fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- promtool ------------------------------------------------------------------------------
promtool=""
if command -v promtool >/dev/null 2>&1; then
  promtool=$(command -v promtool)
elif [[ "${SKIP_PROMTOOL:-}" == 1 ]]; then
  skip "promtool checks: promtool not installed and SKIP_PROMTOOL=1"
else
  echo "FAIL  promtool is not installed: install it (Debian: apt-get install prometheus), or set SKIP_PROMTOOL=1 to skip its checks"
  exit 1
fi

# The configs name the rule file by its path in the container (/etc/prometheus/alerts.yml);
# promtool opens it, so each config is checked as a temporary copy pointing at deploy/.
prom_config_copy() { # SRC DEST
  sed "s#/etc/prometheus/alerts.yml#$PWD/deploy/prometheus/alerts.yml#" "$1" >"$2"
}

if [[ -n "$promtool" ]]; then
  prom_config_copy deploy/prometheus/prometheus.yml "$work/prometheus.yml"
  check "promtool check config deploy/prometheus/prometheus.yml (rule_files pointed at deploy/)" \
    "$promtool" check config "$work/prometheus.yml"

  prom_config_copy deploy/prometheus/prometheus-kubernetes.yml "$work/prometheus-kubernetes.yml"
  if out=$("$promtool" check config "$work/prometheus-kubernetes.yml" 2>&1); then
    ok "promtool check config deploy/prometheus/prometheus-kubernetes.yml (rule_files pointed at deploy/)"
  elif grep -q 'field kubernetes_sd_configs not found' <<<"$out"; then
    # Debian builds Prometheus without Kubernetes discovery: check everything else.
    sed -e 's#kubernetes_sd_configs:#static_configs:#' -e 's#- role: pod#- targets: []#' \
      "$work/prometheus-kubernetes.yml" >"$work/prometheus-kubernetes-static.yml"
    check "promtool check config deploy/prometheus/prometheus-kubernetes.yml (this promtool lacks Kubernetes discovery: checked with static_configs in its place)" \
      "$promtool" check config "$work/prometheus-kubernetes-static.yml"
  else
    fail "promtool check config deploy/prometheus/prometheus-kubernetes.yml"
    printf '%s\n' "$out" | sed 's/^/      /'
  fi

  check "promtool check rules deploy/prometheus/alerts.yml" \
    "$promtool" check rules deploy/prometheus/alerts.yml
  check "promtool test rules deploy/prometheus/alerts.test.yml" \
    "$promtool" test rules deploy/prometheus/alerts.test.yml
fi

# --- npm tools for the node checks -----------------------------------------------------------
tools=${TALLY_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/tally-check-deploy}
tools_spec='{"private":true,"dependencies":{"kubernetes-models":"4.5.1","kubernetes-types":"1.30.0","typescript":"5.9.3","yaml":"2.9.1"}}'
have_tools=0
if ! command -v node >/dev/null 2>&1; then
  fail "node is not installed: the dashboard, metric-name and Kubernetes checks need it"
else
  mkdir -p "$tools"
  if [[ "$(cat "$tools/package.json" 2>/dev/null)" != "$tools_spec" || ! -d "$tools/node_modules/yaml" ]]; then
    printf '%s\n' "$tools_spec" >"$tools/package.json"
    rm -rf "$tools/node_modules" "$tools/package-lock.json"
    if out=$(cd "$tools" && npm install --no-audit --no-fund --loglevel=error 2>&1); then
      ok "npm tools installed in $tools (kubernetes-models 4.5.1, kubernetes-types 1.30.0, typescript 5.9.3, yaml 2.9.1)"
      have_tools=1
    else
      fail "npm install of the check tools in $tools (the npm registry must be reachable once)"
      printf '%s\n' "$out" | sed 's/^/      /'
      rm -f "$tools/package.json"
    fi
  else
    have_tools=1
  fi
fi

# --- node checks ---------------------------------------------------------------------------
cat >"$work/check.cjs" <<'JS'
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { createRequire } = require('module');

const [tools, work, promtool] = process.argv.slice(2);
const req = createRequire(path.join(tools, 'package.json'));
const YAML = req('yaml');
const skipSchema = process.env.SKIP_K8S_SCHEMA === '1';

let failed = 0;
function report(name, problems, note = '') {
  if (problems.length === 0) {
    console.log(`ok    ${name}${note ? ` (${note})` : ''}`);
  } else {
    failed++;
    console.log(`FAIL  ${name}`);
    for (const p of problems) console.log(`      ${String(p).replace(/\n/g, '\n      ')}`);
  }
}
const readYaml = (file) => YAML.parse(fs.readFileSync(file, 'utf8'));

// ---- metrics that exist: name -> { type, labels } -----------------------------------------
function knownMetrics() {
  const metrics = new Map();
  for (const file of ['src/core/metrics.ts', 'src/controller/metrics.ts']) {
    const src = fs.readFileSync(file, 'utf8');
    const starts = [...src.matchAll(/new\s+(Counter|Gauge|Histogram|HotCounter|HotHistogram)\b/g)];
    starts.forEach((m, i) => {
      const body = src.slice(m.index, i + 1 < starts.length ? starts[i + 1].index : undefined);
      const name = /name:\s*'([a-zA-Z_:][a-zA-Z0-9_:]*)'/.exec(body);
      if (!name) return;
      const labels = /labelNames:\s*\[([^\]]*)\]/.exec(body);
      metrics.set(name[1], {
        type: m[1].replace('Hot', '').toLowerCase(),
        labels: labels ? [...labels[1].matchAll(/'([^']+)'/g)].map((l) => l[1]) : [],
        file,
      });
    });
  }
  return metrics;
}
const metrics = knownMetrics();
// Series a family exports: a histogram only _bucket, _sum, _count; counters and gauges by name.
const series = new Map();
for (const [name, m] of metrics) {
  if (m.type === 'histogram') {
    for (const s of ['_bucket', '_sum', '_count']) series.set(name + s, { ...m, family: name, suffix: s });
  } else series.set(name, { ...m, family: name, suffix: '' });
}
// Labels that Prometheus adds (prometheus.yml, prometheus-kubernetes.yml).
const targetLabels = (metric) =>
  metric.startsWith('tally_controller_')
    ? ['job', 'instance', 'namespace', 'pod']
    : ['job', 'instance', 'namespace', 'pod', 'node'];

// strict: PromQL (and test series): only series that are exported, with labels they can have.
function checkPromql(where, expr, problems, used) {
  for (const m of expr.matchAll(/\b(tally_[a-z0-9_]+)\b(\s*\{([^}]*)\})?/g)) {
    const name = m[1];
    const s = series.get(name);
    if (!s) {
      const hint = metrics.get(name)?.type === 'histogram' ? ' (a histogram: use _bucket, _sum or _count)' : '';
      problems.push(`${where}: ${name} is not a series Tally exports${hint}`);
      continue;
    }
    used?.add(name);
    if (m[3] === undefined) continue;
    const allowed = new Set([...s.labels, ...targetLabels(name), ...(s.suffix === '_bucket' ? ['le'] : [])]);
    for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) {
      if (!allowed.has(l[1])) problems.push(`${where}: ${name} has no label ${l[1]}`);
    }
  }
}
// lenient: prose (descriptions, help text) may name a family or a series.
function checkProse(where, text, problems) {
  for (const m of text.matchAll(/\b(tally_[a-z0-9_]+)\b/g)) {
    if (!metrics.has(m[1]) && !series.has(m[1])) problems.push(`${where}: ${m[1]} is not a Tally metric`);
  }
}

// ---- dashboard -------------------------------------------------------------------------------
const dashFile = 'deploy/grafana/tally-dashboard.json';
let dash = null;
{
  const problems = [];
  try {
    dash = JSON.parse(fs.readFileSync(dashFile, 'utf8'));
  } catch (err) {
    problems.push(`${dashFile}: ${err.message}`);
  }
  if (dash) {
    if (dash.uid !== 'tally') problems.push(`uid is ${JSON.stringify(dash.uid)}, expected "tally"`);
    const vars = dash.templating?.list ?? [];
    const dsVar = vars.find((v) => v.name === 'datasource');
    if (!dsVar || dsVar.type !== 'datasource' || dsVar.query !== 'prometheus') {
      problems.push('no templating variable "datasource" of type datasource (query prometheus)');
    }
    const varNames = new Set(vars.map((v) => v.name));
    for (const v of vars) {
      if (v.type === 'query' && v.datasource?.uid !== '${datasource}') problems.push(`variable ${v.name}: datasource is not \${datasource}`);
    }
    const ids = new Set();
    for (const p of dash.panels ?? []) {
      const where = `panel ${p.id} "${p.title}"`;
      if (ids.has(p.id)) problems.push(`${where}: duplicate id`);
      ids.add(p.id);
      const g = p.gridPos ?? {};
      if (!(g.w > 0 && g.h > 0 && g.x >= 0 && g.x + g.w <= 24)) problems.push(`${where}: gridPos ${JSON.stringify(g)} outside 24 columns`);
      if (p.type === 'row') continue;
      if (p.datasource?.uid !== '${datasource}') problems.push(`${where}: datasource is not \${datasource}`);
      const targets = p.targets ?? [];
      if (targets.length === 0) problems.push(`${where}: no queries`);
      const refIds = new Set();
      for (const t of targets) {
        if (t.datasource?.uid !== '${datasource}') problems.push(`${where} ${t.refId}: datasource is not \${datasource}`);
        if (refIds.has(t.refId)) problems.push(`${where}: duplicate refId ${t.refId}`);
        refIds.add(t.refId);
        if (!t.expr) problems.push(`${where} ${t.refId}: empty expr`);
        for (const v of (t.expr ?? '').matchAll(/\$(\w+)/g)) {
          if (!v[1].startsWith('__') && !varNames.has(v[1])) problems.push(`${where} ${t.refId}: undefined variable $${v[1]}`);
        }
      }
    }
  }
  report(`dashboard ${dashFile}: JSON, uid "tally", \${datasource} on every panel and query, layout`, problems);
}

// ---- metric names and labels ------------------------------------------------------------------
const alertsFile = 'deploy/prometheus/alerts.yml';
const testsFile = 'deploy/prometheus/alerts.test.yml';
const alerts = readYaml(alertsFile);
const tests = readYaml(testsFile);
{
  const problems = [];
  const used = new Set();
  if (dash) {
    for (const p of dash.panels ?? []) {
      for (const t of p.targets ?? []) checkPromql(`${dashFile} panel "${p.title}" ${t.refId}`, t.expr ?? '', problems, used);
      checkProse(`${dashFile} panel "${p.title}" description`, p.description ?? '', problems);
    }
    for (const v of dash.templating?.list ?? []) {
      const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
      checkPromql(`${dashFile} variable ${v.name}`, q, problems);
    }
    // The panels SREs were promised.
    for (const need of [
      'tally_requests_total', 'tally_request_duration_seconds_bucket', 'tally_wal_fsync_duration_seconds_bucket',
      'tally_wal_batch_records_bucket', 'tally_replication_lag_records', 'tally_replication_lag_seconds',
      'tally_node_role', 'tally_node_epoch', 'tally_node_degraded', 'tally_controller_failovers_total',
      'tally_queued_requests', 'tally_wal_bytes',
    ]) {
      if (!used.has(need)) problems.push(`${dashFile}: no panel queries ${need}`);
    }
  }
  for (const g of alerts.groups ?? []) {
    for (const r of g.rules ?? []) {
      const where = `${alertsFile} ${r.alert ?? r.record}`;
      checkPromql(where, r.expr ?? '', problems);
      for (const [k, v] of Object.entries(r.annotations ?? {})) checkProse(`${where} ${k}`, String(v), problems);
    }
  }
  for (const t of tests.tests ?? []) {
    for (const s of t.input_series ?? []) checkPromql(`${testsFile} "${t.name}"`, s.series, problems);
  }
  report(
    'metric names and labels in the dashboard, alerts and alert tests exist in src/core/metrics.ts or src/controller/metrics.ts',
    problems,
    `${metrics.size} metrics known`,
  );
}

// ---- every alert tested both ways --------------------------------------------------------------
{
  const problems = [];
  const names = (alerts.groups ?? []).flatMap((g) => (g.rules ?? []).filter((r) => r.alert).map((r) => r.alert));
  const fires = new Map(names.map((n) => [n, 0]));
  const quiet = new Map(names.map((n) => [n, 0]));
  for (const t of tests.tests ?? []) {
    for (const c of t.alert_rule_test ?? []) {
      if (!fires.has(c.alertname)) {
        problems.push(`${testsFile} "${t.name}": no alert named ${c.alertname}`);
        continue;
      }
      const m = (c.exp_alerts ?? []).length > 0 ? fires : quiet;
      m.set(c.alertname, m.get(c.alertname) + 1);
    }
  }
  for (const n of names) {
    if (fires.get(n) === 0) problems.push(`${n}: no test case where it fires`);
    if (quiet.get(n) === 0) problems.push(`${n}: no test case where it must not fire`);
  }
  report(`every alert in ${alertsFile} has a firing and a non-firing test case`, problems, `${names.length} alerts`);
}

// ---- dashboard queries parse as PromQL ---------------------------------------------------------
if (dash && promtool) {
  const rules = [];
  for (const p of dash.panels ?? []) {
    for (const t of p.targets ?? []) {
      const expr = (t.expr ?? '')
        .replace(/\$__rate_interval|\$__interval/g, '1m')
        .replace(/\$__range/g, '1h')
        .replace(/\$(namespace|node)\b/g, '.*');
      rules.push({ record: `dashboard_check:panel_${p.id}_${t.refId}`, expr });
    }
  }
  const file = path.join(work, 'dashboard-queries.rules.yml');
  fs.writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules }] }));
  const r = spawnSync(promtool, ['check', 'rules', file], { encoding: 'utf8' });
  report(
    `promtool parses the dashboard's ${rules.length} queries`,
    r.status === 0 ? [] : [(r.stdout + r.stderr).trim()],
  );
}

// ---- Kubernetes -------------------------------------------------------------------------------
const k8sDir = 'deploy/kubernetes';
const kustomization = readYaml(path.join(k8sDir, 'kustomization.yaml'));
const docs = [];
{
  const problems = [];
  if (kustomization.kind !== 'Kustomization') problems.push('kustomization.yaml: kind is not Kustomization');
  if (kustomization.namespace) problems.push('kustomization.yaml sets a namespace: the manifests are namespace-agnostic');
  const listed = kustomization.resources ?? [];
  const present = fs.readdirSync(k8sDir).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
  for (const f of present) if (!listed.includes(f)) problems.push(`${f} is not listed in kustomization.yaml`);
  for (const f of listed) {
    if (!present.includes(f)) {
      problems.push(`kustomization.yaml lists ${f}, which does not exist`);
      continue;
    }
    for (const d of YAML.parseAllDocuments(fs.readFileSync(path.join(k8sDir, f), 'utf8'))) {
      if (d.errors.length) problems.push(`${f}: ${d.errors.map((e) => e.message).join('; ')}`);
      const obj = d.toJS();
      if (obj == null) continue;
      if (obj.metadata?.namespace) problems.push(`${f}: ${obj.kind} ${obj.metadata.name} sets a namespace`);
      for (const k of ['apiVersion', 'kind']) if (!obj[k]) problems.push(`${f}: no ${k}`);
      if (!obj.metadata?.name) problems.push(`${f}: no metadata.name`);
      docs.push({ file: f, obj });
    }
  }
  report(`${k8sDir}: kustomization lists every manifest; YAML parses; no namespace`, problems, `${docs.length} objects`);
}

if (skipSchema) {
  console.log('skip  Kubernetes schema checks: SKIP_K8S_SCHEMA=1');
} else {
  // JSON schema from the Kubernetes OpenAPI: required fields, types, formats.
  const problems = [];
  for (const { file, obj } of docs) {
    const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
    const mod = `kubernetes-models/${group ? `${group}/` : ''}${version}/${obj.kind}`;
    let Model;
    try {
      Model = req(mod)[obj.kind];
    } catch {
      problems.push(`${file}: no schema for ${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (err) {
      problems.push(`${file}: ${obj.kind} ${obj.metadata?.name}: ${err.message}`);
    }
  }
  report(`${k8sDir}: manifests validate against the Kubernetes JSON schemas (kubernetes-models 4.5.1)`, problems);

  // Unknown fields (a typo such as readinesProbe is silently dropped by the API server) and
  // mistyped values: each object as a TypeScript literal of its kubernetes-types type.
  const ts = req('typescript');
  const dir = fs.mkdtempSync(path.join(tools, 'check-'));
  try {
    const lines = [];
    const spans = [];
    docs.forEach(({ file, obj }, i) => {
      const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['core', obj.apiVersion];
      lines.push(`import type { ${obj.kind} as T${i} } from 'kubernetes-types/${group}/${version}';`);
      const start = lines.length;
      lines.push(`export const r${i}: T${i} = ${JSON.stringify(obj, null, 2)};`);
      spans.push({ file, from: start, to: lines.join('\n').split('\n').length });
    });
    const tsFile = path.join(dir, 'manifests.ts');
    fs.writeFileSync(tsFile, lines.join('\n') + '\n');
    const program = ts.createProgram([tsFile], {
      strict: true, noEmit: true, types: [], skipLibCheck: true,
      module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10,
      target: ts.ScriptTarget.ES2022,
    });
    const diags = ts.getPreEmitDiagnostics(program);
    const tsProblems = diags.map((d) => {
      const msg = ts.flattenDiagnosticMessageText(d.messageText, '\n');
      if (!d.file) return msg;
      const { line } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
      const span = spans.find((s) => line >= s.from && line < s.to);
      const text = d.file.text.split('\n')[line].trim().replace(/,$/, '');
      return `${span ? span.file : path.basename(d.file.fileName)}: at ${text}: ${msg}`;
    });
    // TypeScript reports the first problem of each object: fix it and run again for the next.
    report(`${k8sDir}: no unknown or mistyped fields (TypeScript 5.9 against kubernetes-types 1.30)`, tsProblems);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Cross-references the API server does not check, and what Tally needs of them.
{
  const problems = [];
  const by = (kind) => docs.filter((d) => d.obj.kind === kind).map((d) => d.obj);
  const sets = by('StatefulSet');
  const services = by('Service');
  const matches = (selector, labels) =>
    selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);
  const containersOf = (s) => s.spec?.template?.spec?.containers ?? [];
  const portsOf = (s) => containersOf(s).flatMap((c) => c.ports ?? []);
  for (const s of sets) {
    const name = `StatefulSet ${s.metadata.name}`;
    const labels = s.spec?.template?.metadata?.labels;
    if (!matches(s.spec?.selector?.matchLabels, labels)) problems.push(`${name}: selector does not match its pod labels`);
    if (!services.some((v) => v.metadata.name === s.spec?.serviceName)) problems.push(`${name}: serviceName ${s.spec?.serviceName} is not a Service here`);
    const volumes = new Set([
      ...(s.spec?.template?.spec?.volumes ?? []).map((v) => v.name),
      ...(s.spec?.volumeClaimTemplates ?? []).map((v) => v.metadata?.name),
    ]);
    for (const c of containersOf(s)) {
      const ports = new Set((c.ports ?? []).map((p) => p.containerPort));
      for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        const port = c[probe]?.grpc?.port ?? c[probe]?.httpGet?.port ?? c[probe]?.tcpSocket?.port;
        if (c[probe] && !ports.has(port) && !(c.ports ?? []).some((p) => p.name === port)) {
          problems.push(`${name} ${c.name}: ${probe} port ${port} is not a container port`);
        }
      }
      for (const m of c.volumeMounts ?? []) if (!volumes.has(m.name)) problems.push(`${name} ${c.name}: volumeMount ${m.name} has no volume`);
      const defined = new Set();
      for (const e of c.env ?? []) {
        for (const ref of String(e.value ?? '').matchAll(/\$\((\w+)\)/g)) {
          if (!defined.has(ref[1])) problems.push(`${name} ${c.name}: env ${e.name} uses $(${ref[1]}), not defined before it (left unexpanded)`);
        }
        defined.add(e.name);
      }
      if (c.securityContext?.readOnlyRootFilesystem !== true) problems.push(`${name} ${c.name}: readOnlyRootFilesystem is not true`);
      if (!c.resources?.requests) problems.push(`${name} ${c.name}: no resource requests`);
    }
    const psc = s.spec?.template?.spec?.securityContext ?? {};
    if (psc.runAsNonRoot !== true || psc.runAsUser !== 10001 || psc.fsGroup !== 10001) problems.push(`${name}: not runAsNonRoot with uid and fsGroup 10001`);
  }
  for (const v of services) {
    const name = `Service ${v.metadata.name}`;
    const selected = sets.filter((s) => matches(v.spec?.selector, s.spec?.template?.metadata?.labels));
    if (selected.length === 0) problems.push(`${name}: selects no pods`);
    for (const p of v.spec?.ports ?? []) {
      const target = p.targetPort ?? p.port;
      for (const s of selected) {
        if (!portsOf(s).some((cp) => cp.name === target || cp.containerPort === target)) problems.push(`${name}: targetPort ${target} is not a port of ${s.metadata.name}`);
      }
    }
  }
  for (const pdb of by('PodDisruptionBudget')) {
    if (!sets.some((s) => matches(pdb.spec?.selector?.matchLabels, s.spec?.template?.metadata?.labels))) problems.push(`PodDisruptionBudget ${pdb.metadata.name}: selects no pods`);
  }
  // Tally: the node pods, their peers service, the controller's member list and address.
  const nodes = sets.find((s) => s.metadata.name === 'tally-node');
  const controller = sets.find((s) => s.metadata.name === 'tally-controller');
  const env = (s, n) => (containersOf(s)[0]?.env ?? []).find((e) => e.name === n);
  if (!nodes || !controller) {
    problems.push('StatefulSets tally-node and tally-controller are both needed');
  } else {
    const node = containersOf(nodes)[0];
    const peers = services.find((v) => v.metadata.name === nodes.spec.serviceName);
    if (peers && (peers.spec?.clusterIP !== 'None' || peers.spec?.publishNotReadyAddresses !== true)) {
      problems.push(`Service ${peers.metadata.name}: the nodes' governing service must be headless with publishNotReadyAddresses: true`);
    }
    if (nodes.spec.replicas !== 2) problems.push('tally-node: replicas must be 2 (a primary and its standby)');
    if (nodes.spec.podManagementPolicy !== 'Parallel') problems.push('tally-node: podManagementPolicy must be Parallel (a standby is never Ready)');
    if (nodes.spec.updateStrategy?.type !== 'OnDelete') problems.push('tally-node: updateStrategy must be OnDelete (a RollingUpdate waits for a Ready standby)');
    if (env(nodes, 'TALLY_ID')?.valueFrom?.fieldRef?.fieldPath !== 'metadata.name') problems.push('tally-node: TALLY_ID must come from metadata.name');
    if (node?.readinessProbe?.grpc?.service !== 'tally.v1.Counter') problems.push('tally-node: readinessProbe must be gRPC health of tally.v1.Counter');
    for (const probe of ['livenessProbe', 'startupProbe']) {
      if ((node?.[probe]?.grpc?.service ?? '') !== '' || !node?.[probe]?.grpc) problems.push(`tally-node: ${probe} must be gRPC health of service ""`);
    }
    const grpcPort = (node?.ports ?? []).find((p) => p.name === 'grpc')?.containerPort;
    const adv = env(nodes, 'TALLY_ADVERTISE')?.value ?? '';
    if (!adv.startsWith(`$(TALLY_ID).${nodes.spec.serviceName}.`) || !adv.endsWith(`:${grpcPort}`)) problems.push(`tally-node: TALLY_ADVERTISE ${adv} is not the pod's peer DNS name and gRPC port`);
    const want = Array.from({ length: nodes.spec.replicas }, (_, i) => `tally-node-${i}=tally-node-${i}.${nodes.spec.serviceName}:${grpcPort}`).join(',');
    const got = env(controller, 'TALLY_CONTROLLER_NODES')?.value;
    if (got !== want) problems.push(`tally-controller: TALLY_CONTROLLER_NODES is ${got}, expected ${want}`);
    const ctlService = services.find((v) => v.metadata.name === controller.spec.serviceName);
    const ctlPort = (ctlService?.spec?.ports ?? []).find((p) => p.name === 'grpc')?.port;
    if (env(nodes, 'TALLY_CONTROLLER')?.value !== `${ctlService?.metadata.name}:${ctlPort}`) problems.push(`tally-node: TALLY_CONTROLLER is not ${ctlService?.metadata.name}:${ctlPort}`);
    for (const s of [nodes, controller]) {
      if (s.spec.template.spec.enableServiceLinks !== false) problems.push(`${s.metadata.name}: enableServiceLinks must be false (Service link variables are named TALLY_*)`);
    }
  }
  report(`${k8sDir}: selectors, ports, volumes, env references, probes, Tally members and addresses agree`, problems);
}

process.exit(failed > 0 ? 1 : 0);
JS

if [[ $have_tools == 1 ]]; then
  node "$work/check.cjs" "$tools" "$work" "$promtool" | tee "$work/node.out" || true
  failures=$((failures + $(grep -c '^FAIL' "$work/node.out" || true)))
  if ! grep -q 'Tally members and addresses agree' "$work/node.out"; then
    fail "the node checks stopped before their end (see above)"
  fi
elif command -v node >/dev/null 2>&1; then
  skip "dashboard, metric-name and Kubernetes checks: their npm tools are not installed"
fi

# --- kubectl kustomize -----------------------------------------------------------------------
if command -v kubectl >/dev/null 2>&1; then
  check "kubectl kustomize deploy/kubernetes" kubectl kustomize deploy/kubernetes
else
  skip "kubectl kustomize deploy/kubernetes: kubectl not installed"
fi

# --- docker-compose --------------------------------------------------------------------------
if [[ ! -f docker-compose.yml ]]; then
  skip "docker-compose config: no docker-compose.yml at the repository root yet"
elif ! command -v docker-compose >/dev/null 2>&1; then
  skip "docker-compose config: docker-compose not installed"
else
  check "docker-compose -f docker-compose.yml config -q" docker-compose -f docker-compose.yml config -q
fi

if ((failures > 0)); then
  echo "check-deploy: $failures check(s) failed"
  exit 1
fi
echo "check-deploy: all checks passed"
