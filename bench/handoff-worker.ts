/** Echoes every message back, transferring its buffer: the far side of the hand-off measurement. */
import { parentPort } from 'node:worker_threads';

parentPort!.on('message', (message: { data: Float32Array; transfer: boolean }) => {
  parentPort!.postMessage(message, message.transfer ? [message.data.buffer as ArrayBuffer] : []);
});
