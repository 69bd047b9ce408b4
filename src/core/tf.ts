/**
 * The one import of TensorFlow.js. Everything in the core takes `tf` from here so that the backend
 * chosen in backend.ts is the one every op runs on.
 */
import * as tf from '@tensorflow/tfjs';
export { tf };
export type Tensor = tf.Tensor;
export type Tensor1D = tf.Tensor1D;
export type Tensor2D = tf.Tensor2D;
export type Tensor3D = tf.Tensor3D;
export type Tensor4D = tf.Tensor4D;
