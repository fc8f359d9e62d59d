{{- define "dynamicfs.labels" -}}
app.kubernetes.io/name: dynamicfs
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "dynamicfs.selector" -}}
app.kubernetes.io/name: dynamicfs
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dynamicfs.image" -}}
{{ .repository }}:{{ .tag }}
{{- end -}}

{{/* Scheduling knobs shared by the workloads: nodeSelector, tolerations, priorityClassName. */}}
{{- define "dynamicfs.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}
