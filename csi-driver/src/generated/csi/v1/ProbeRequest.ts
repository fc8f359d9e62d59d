// Original file: csi-driver/proto/csi.proto


export interface ProbeRequest {
}

export interface ProbeRequest__Output {
}
