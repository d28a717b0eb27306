/**
 * `GET /cameras/{id}/snapshot`: the camera's last scored frame with what was found drawn on it, to check a
 * camera's aim and the model's view from a browser (frames scored as pixels show the model's input). Behind the scoring keys like every non-probe route.
 */
import type { FastifyInstance } from 'fastify';
import { EdgeInferError } from '../../errors.js';
import type { Frame } from '../../pipeline/frame.js';
import { drawDetections } from '../../pipeline/overlay.js';
import type { ServiceOptions } from '../app.js';

/** What the route needs of the cameras. */
export interface CameraFrames {
  ids(): string[];
  camera(id: string): { latest(): { frame: Frame; result: unknown; model: string; version: string } | undefined } | undefined;
}

export async function cameraRoutes(app: FastifyInstance, options: ServiceOptions): Promise<void> {
  const { cameras } = options;
  if (!cameras) return;
  app.get<{ Params: { id: string } }>('/cameras/:id/snapshot', async (request, reply) => {
    const { id } = request.params;
    const camera = cameras.camera(id);
    if (!camera) throw new EdgeInferError('EI_CAMERA_NOT_FOUND', [id, cameras.ids().join(', ') || '(none)']);
    const frame = camera.latest();
    if (!frame) throw new EdgeInferError('EI_CAMERA_NO_FRAME', [id]);
    return reply
      .type('image/jpeg')
      .header('cache-control', 'no-store')
      .header('x-model', frame.model)
      .header('x-model-version', frame.version)
      .send(await drawDetections(frame.frame, frame.result));
  });
}
