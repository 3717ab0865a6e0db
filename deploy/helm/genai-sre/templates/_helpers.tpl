{{/* Names, labels and the sidecar container, shared by the templates (and by charts that depend on this one). */}}

{{- define "genai-sre.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Common labels; `app.kubernetes.io/instance` comes with each selector (or is added where there is none). */}}
{{- define "genai-sre.labels" -}}
app.kubernetes.io/part-of: genai-sre
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "genai-sre.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "genai-sre.appSelector" -}}
app.kubernetes.io/name: {{ .Values.app.name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "genai-sre.primarySelector" -}}
app.kubernetes.io/name: genai-sre-primary
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The sidecar's config: fleet mode, merged with sidecar.labels / telemetry / extraConfig. */}}
{{- define "genai-sre.sidecarConfig" -}}
{{- $cfg := dict
  "version" "genai-sre/v1"
  "proxy" (dict "host" "127.0.0.1" "port" 8788)
  "upstreams" .Values.sidecar.upstreams
  "admin" (dict "host" "0.0.0.0" "port" 9464 "token_env" "GENAI_SRE_ADMIN_TOKEN")
  "labels" .Values.sidecar.labels
  "detectors" .Values.sidecar.detectors
  "storage" (dict "data_dir" "/var/lib/genai-sre")
  "slo" (dict "file" "slos.yaml" "evaluate" "prometheus")
  "alerting" (dict "file" nil)
  "incidents" (dict "role" "off")
  "telemetry" .Values.sidecar.telemetry
  "logging" (dict "level" "INFO" "format" "json")
-}}
{{- toYaml (mustMergeOverwrite $cfg (deepCopy .Values.sidecar.extraConfig)) -}}
{{- end -}}

{{/* The primary's config: no proxy traffic of its own; owns incidents; SQLite, or PostgreSQL from env GENAI_SRE_INCIDENTS_URL. */}}
{{- define "genai-sre.primaryConfig" -}}
{{- $cfg := dict
  "version" "genai-sre/v1"
  "proxy" (dict "host" "127.0.0.1" "port" 8788)
  "upstreams" .Values.sidecar.upstreams
  "admin" (dict "host" "0.0.0.0" "port" 9464 "token_env" "GENAI_SRE_ADMIN_TOKEN")
  "detectors" list
  "storage" (dict "data_dir" "/var/lib/genai-sre")
  "slo" (dict "file" "slos.yaml" "evaluate" "prometheus")
  "alerting" (dict "file" nil)
  "incidents" (dict "role" "primary" "store_url" "" "retention_days" .Values.primary.retentionDays)
  "logging" (dict "level" "INFO" "format" "json")
-}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The sidecar container; `restartPolicy: Always` makes it a native sidecar among initContainers. */}}
{{- define "genai-sre.sidecar" -}}
- name: genai-sre
  image: {{ include "genai-sre.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if .Values.sidecar.nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  args: ["serve", "--config", "/etc/genai-sre/config.yaml"]
  env:
    - name: GENAI_SRE_ADMIN_TOKEN
      valueFrom:
        secretKeyRef: {name: {{ .Values.adminToken.existingSecret }}, key: {{ .Values.adminToken.key }}}
    {{- with .Values.sidecar.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - {name: proxy, containerPort: 8788}
    - {name: admin, containerPort: 9464}
  startupProbe:
    httpGet: {path: /healthz, port: admin}
    periodSeconds: 2
    failureThreshold: 30
  livenessProbe:
    httpGet: {path: /healthz, port: admin}
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 3
  readinessProbe:
    httpGet: {path: /readyz, port: admin}
    periodSeconds: 5
    timeoutSeconds: 3
  resources:
    {{- toYaml .Values.sidecar.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - {name: genai-sre-config, mountPath: /etc/genai-sre, readOnly: true}
    - {name: genai-sre-data, mountPath: /var/lib/genai-sre}
    - {name: genai-sre-tmp, mountPath: /tmp}
{{- end -}}

{{/* The volumes the sidecar container mounts. */}}
{{- define "genai-sre.sidecarVolumes" -}}
- name: genai-sre-config
  configMap:
    name: {{ include "genai-sre.fullname" . }}-config
- name: genai-sre-data
  emptyDir: {sizeLimit: {{ .Values.sidecar.dataSizeLimit }}}
- name: genai-sre-tmp
  emptyDir: {medium: Memory, sizeLimit: 64Mi}
{{- end -}}
