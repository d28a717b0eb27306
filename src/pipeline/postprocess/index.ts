import type { PostprocessSettings } from '../../models/manifest.js';
import { createBlazefacePostprocessor } from './blazeface.js';
import { createClassificationPostprocessor } from './classification.js';
import { createRawPostprocessor } from './raw.js';
import type { Postprocessor, PostprocessorContext } from './types.js';

export type { Postprocessor, PostprocessorContext } from './types.js';

/** The built-in postprocessor a package or model slot names; `raw` when none is named. */
export async function createPostprocessor(settings: PostprocessSettings | undefined, context: PostprocessorContext): Promise<Postprocessor> {
  switch (settings?.kind) {
    case undefined:
    case 'raw':
      return createRawPostprocessor();
    case 'classification':
      return createClassificationPostprocessor(settings, context);
    case 'blazeface':
      return createBlazefacePostprocessor(settings, context);
  }
}
