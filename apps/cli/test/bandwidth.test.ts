import type { BandwidthReport } from '@cilia/api-client';
import { describe, expect, it } from 'vitest';
import { bandwidthTable, formatBitRate } from '../src/commands/bpf.js';
import { statusTable } from '../src/commands/status.js';

const off: BandwidthReport = {
  egress: { enabled: false, reason: 'this kernel has no fq qdisc (sch_fq)', devices: [] },
  ingress: { enabled: true },
  bbr: false,
  endpoints: [],
  invalid: [],
};

describe('cilia bpf bandwidth list', () => {
  it('writes rates as people read them', () => {
    expect([10e6, 1e9, 1.5e9, 500e3, 999, 12_345_678].map(formatBitRate)).toEqual(['10Mbit/s', '1Gbit/s', '1.5Gbit/s', '500kbit/s', '999bit/s', '12.35Mbit/s']);
  });

  it('says why egress is off, lists each endpoint with a limit, and the refused annotations', () => {
    expect(bandwidthTable(off)).toBe('Egress:   off: this kernel has no fq qdisc (sch_fq)\nIngress:  on (eBPF token bucket)\nBBR:      off\nNo endpoint has a bandwidth limit.\n');
    const table = bandwidthTable({
      ...off,
      egress: { enabled: true, devices: ['eth0'] },
      endpoints: [
        { endpointId: 3, namespace: 'shop', name: 'web', egress: { bitsPerSecond: 5e6, drops: 2 }, ingress: { bitsPerSecond: 1e9, drops: 40 } },
        { endpointId: 9, ingress: { bitsPerSecond: 100e6, drops: 0 } },
      ],
      invalid: [{ pod: 'shop/db', path: 'metadata.annotations["kubernetes.io/ingress-bandwidth"]', reason: '"x" is not a Kubernetes quantity' }],
    });
    expect(table.split('\n')).toEqual([
      'Egress:   on (EDT, fq on eth0)',
      'Ingress:  on (eBPF token bucket)',
      'BBR:      off',
      'Refused:  shop/db: metadata.annotations["kubernetes.io/ingress-bandwidth"]: "x" is not a Kubernetes quantity',
      expect.stringMatching(/^ENDPOINT +POD +EGRESS +INGRESS +DROPS$/),
      expect.stringMatching(/^3 +shop\/web +5Mbit\/s +1Gbit\/s +42$/),
      expect.stringMatching(/^9 +<none> +<none> +100Mbit\/s +0$/),
      '',
    ]);
  });

  it('cilia status shows the notes plugins report, health untouched', () => {
    const text = statusTable({ version: '1', apiVersion: '1.2.0', node: 'n', uptimeSeconds: 1, startedAt: 'now', health: 'ok', problems: [], notes: ['bandwidth-manager: egress bandwidth (EDT) off: no sch_fq'], plugins: [] });
    expect(text).toMatch(/^Health: +ok$/m);
    expect(text).toMatch(/^Notes: +bandwidth-manager: egress bandwidth \(EDT\) off: no sch_fq$/m);
  });
});
