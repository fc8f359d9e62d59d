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

{{/*
The CSI plugin's policy flags, appended to its args: inline ephemeral volumes (off unless enabled;
their size cap and default, the redundancy policies, pools and tiers they may use) and the mount options
beyond nosuid,nodev that StorageClasses may ask for. Values are quoted: a policy such as
replication:2 is no plain scalar inside a flow list.
*/}}
{{- define "dynamicfs.csiPolicyArgs" -}}
{{- $e := .Values.csi.ephemeral -}}
{{- if $e.enabled }}, --ephemeral{{ end -}}
, --ephemeral-max-size, {{ $e.maxSize | quote }}, --ephemeral-default-size, {{ $e.defaultSize | quote }}
{{- range $e.redundancy }}, --ephemeral-redundancy, {{ . | quote }}{{ end }}
{{- range $e.pools }}, --ephemeral-pool, {{ . | quote }}{{ end }}
{{- range $e.tiers }}, --ephemeral-tier, {{ . | quote }}{{ end }}
{{- range .Values.csi.allowedMountOptions }}, --allow-mount-option, {{ . | quote }}{{ end }}
{{- end -}}

{{/* A StorageClass's mount options: its own, or nosuid,nodev when it names none. */}}
{{- define "dynamicfs.mountOptions" -}}
[{{ .mountOptions | default (list "nosuid" "nodev") | join ", " }}]
{{- end -}}

{{/*
Cross-field checks values.schema.json cannot express (JSON Schema sees one field at a time); each
fails the render with the values to change.
*/}}
{{- define "dynamicfs.validate" -}}
{{- $allowed := .Values.csi.allowedMountOptions -}}
{{- range .Values.storageClasses }}
{{- $sc := .name }}
{{- $opts := .mountOptions | default (list "nosuid" "nodev") }}
{{- range list "suid" "dev" }}
{{- if and (has . $opts) (not (has . $allowed)) }}
{{- fail (printf "storageClasses %s: mount option %s is not allowed; list it in csi.allowedMountOptions first (the CSI plugin refuses it otherwise)" $sc .) }}
{{- end }}
{{- end }}
{{- range list (list "nosuid" "suid") (list "nodev" "dev") (list "noexec" "exec") (list "ro" "rw") }}
{{- if and (has (index . 0) $opts) (has (index . 1) $opts) }}
{{- fail (printf "storageClasses %s: mount options %s and %s contradict each other" $sc (index . 0) (index . 1)) }}
{{- end }}
{{- end }}
{{- end }}
{{- range .Values.diskPaths }}
{{- $root := . }}
{{- /* The CRD refuses pool disks in these (operator/src/api/pool.ts SYSTEM_DIRS): a root there is useless, and mounted into a privileged pod. */}}
{{- if regexMatch "^(/proc|/sys|/dev|/etc|/boot|/usr|/bin|/sbin|/lib|/lib32|/lib64|/libx32|/run|/var/run|/root|/var/lib/kubelet|/var/lib/dynamicfs|/var/lib/containerd|/var/lib/docker|/var/lib/etcd)(/|$)|^/var(/lib)?$" $root }}
{{- fail (printf "diskPaths: %s is a system directory, lies in one, or is /var or /var/lib that hold them; the DynamicFSPool CRD refuses pool disks there" $root) }}
{{- end }}
{{- range list $.Values.kubeletDir $.Values.stateDir }}
{{- if or (eq $root .) (hasPrefix (printf "%s/" $root) .) (hasPrefix (printf "%s/" .) $root) }}
{{- fail (printf "diskPaths: %s overlaps %s (kubeletDir or stateDir): a pool disk there could overwrite kubelet's or the engine's own state" $root .) }}
{{- end }}
{{- end }}
{{- end }}
{{- range .Values.examplePools }}
{{- $pool := .name }}
{{- range .disks }}
{{- $disk := . }}
{{- $in := false }}
{{- range $.Values.diskPaths }}
{{- if or (eq $disk .) (hasPrefix (printf "%s/" .) $disk) }}{{ $in = true }}{{ end }}
{{- end }}
{{- if not $in }}
{{- fail (printf "examplePools %s: disk %s is not in diskPaths (%s); the engine pods would not see it and the admission policy refuses it" $pool $disk (join ", " $.Values.diskPaths)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
