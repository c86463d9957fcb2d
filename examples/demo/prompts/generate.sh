#!/usr/bin/env bash
# Renders demo prompts with espeak-ng (fr-fr, en-us) and sox, as 8 kHz 16-bit mono WAV.
# The output is committed; the engine never runs espeak-ng for the embedded demo.
# Usage: ./generate.sh NAME...   (default: the prompts listed below)
set -euo pipefail
cd "$(dirname "$0")"
declare -A text=(
  [main_en]="Main menu. For sales, press 1. For support, press 2. For our opening hours, press 3. To leave a message and be called back, press 4. To hear this menu again, press star. To choose another language, press 0. To end the call, press 9."
  [main_fr]="Menu principal. Pour le service commercial, tapez 1. Pour l'assistance, tapez 2. Pour nos horaires, tapez 3. Pour laisser un message et être rappelé, tapez 4. Pour réécouter ce menu, tapez étoile. Pour changer de langue, tapez 0. Pour raccrocher, tapez 9."
  [operator_en]="To speak to someone, press 5."
  [operator_fr]="Pour parler à quelqu'un, tapez 5."
  [vm_greeting_en]="Please leave your message after the tone. Press pound when you are done."
  [vm_greeting_fr]="Laissez votre message après le bip. Tapez dièse quand vous avez terminé."
  [vm_saved_en]="Thank you, your message has been saved. We will call you back soon. Goodbye."
  [vm_saved_fr]="Merci, votre message a bien été enregistré. Nous vous rappellerons rapidement. Au revoir."
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${!text[@]}")
for n in "${names[@]}"; do
  case "$n" in *_fr) voice=fr-fr ;; *) voice=en-us ;; esac
  espeak-ng -v "$voice" -s 150 -w /tmp/demo_prompt.wav "${text[$n]}"
  sox /tmp/demo_prompt.wav -r 8000 -c 1 -b 16 -e signed-integer "$n.wav" norm -3
done
rm -f /tmp/demo_prompt.wav
