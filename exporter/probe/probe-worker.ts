// Synthetic probe worker for jfrog-exporter.
//
// Deploy it as a GENERIC_EVENT worker (for example under the key "exporter-probe")
// and set `collectors.workers.probe_worker` to that key. On every run of the
// `workers` collector the exporter calls POST /worker/api/v1/execute/<key> with a
// small JSON payload and reports jfrog_worker_probe_success (1 when the answer's
// executionStatus is STATUS_SUCCESS) and jfrog_worker_probe_duration_seconds.
//
// The worker changes nothing and needs no secret. Besides proving that the
// Workers service runs code, it checks that the worker can reach Artifactory;
// an exception makes the execution STATUS_FAIL, so the probe reports 0.
import { PlatformContext } from 'jfrog-workers';

type ProbePayload = {
    source?: string;        // "jfrog-exporter"
    target?: string;        // the exporter's name for this JPD
    sentAtMillis?: number;  // when the exporter sent the request
};

type ProbeResponse = {
    ok: boolean;
    echo: ProbePayload | undefined;
    artifactoryPing: string;
    answeredAtMillis: number;
};

export default async (context: PlatformContext, data: ProbePayload): Promise<ProbeResponse> => {
    const res = await context.clients.platformHttp.get('/artifactory/api/system/ping');
    if (res.status !== 200) {
        throw new Error(`Artifactory ping answered ${res.status}`);
    }
    return {
        ok: true,
        echo: data,
        artifactoryPing: String(res.data).trim(),
        answeredAtMillis: Date.now(),
    };
};
