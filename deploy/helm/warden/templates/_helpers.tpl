{{/* Chart name, truncated to 63 characters (the DNS label limit of Kubernetes names). */}}
{{- define "warden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, plus the chart name unless the release name contains it. */}}
{{- define "warden.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "warden.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "warden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "warden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "warden.labels" -}}
helm.sh/chart: {{ include "warden.chart" . }}
{{ include "warden.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: server
{{- end }}

{{- define "warden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "warden.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "warden.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* "true" when every replica shares a PostgreSQL store (storage.url or storage.existingSecret). */}}
{{- define "warden.sharedStore" -}}
{{- if or .Values.storage.url .Values.storage.existingSecret }}true{{ end }}
{{- end }}

{{/* The Secret that holds the storage URL, and its key. */}}
{{- define "warden.storageSecretName" -}}
{{- default (printf "%s-storage" (include "warden.fullname" .)) .Values.storage.existingSecret }}
{{- end }}
{{- define "warden.storageSecretKey" -}}
{{- if .Values.storage.existingSecret }}{{ .Values.storage.existingSecretKey }}{{ else }}storage-url{{ end }}
{{- end }}

{{/* Refuses values that cannot work, before anything reaches the cluster. */}}
{{- define "warden.validate" -}}
{{- if not (include "warden.sharedStore" .) }}
{{- if .Values.autoscaling.enabled }}
{{- fail "autoscaling.enabled needs storage.url or storage.existingSecret: the embedded SQLite store belongs to one replica" }}
{{- end }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- fail "replicaCount > 1 needs storage.url or storage.existingSecret: the embedded SQLite store belongs to one replica" }}
{{- end }}
{{- end }}
{{- if le (mul (int .Values.terminationGracePeriodSeconds) 1000) (int .Values.drain.delayMs) }}
{{- fail (printf "terminationGracePeriodSeconds (%d s) must be longer than drain.delayMs (%d ms), or the kubelet kills the pod before it has closed" (int .Values.terminationGracePeriodSeconds) (int .Values.drain.delayMs)) }}
{{- end }}
{{- if not .Values.auth.required }}
{{- fail "auth.required=false: Warden refuses open auth on a non-loopback address; create keys with `warden keys create` instead" }}
{{- end }}
{{- end }}
