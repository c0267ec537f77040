"""What handlers hear on an offer call, in the handler's language (routing's own small catalog;
the caller's prompts live in the IVR catalogs)."""

from __future__ import annotations

TEXTS = {
    "ru": {
        "whisper": "Звонок. Язык: {language}. Тема: {kind}. Ждёт {minutes} мин. "
        "Чтобы принять, нажмите 1.",
        "whisper_callback": "Просьба перезвонить. Язык: {language}. Тема: {kind}. В очереди "
        "{minutes} мин. Чтобы позвонить абоненту, нажмите 1.",
        "calling_back": "Звоним абоненту. Пожалуйста, оставайтесь на линии.",
        "callback_no_answer": "Абонент не ответил. Мы попробуем позже. До свидания.",
        "offer_taken": "Звонок уже принят другим оператором. До свидания.",
        "caller_gone": "Абонент уже положил трубку. До свидания.",
        "ru": "русский", "uk": "украинский", "en": "английский",
        "surrender": "сдача в плен", "family": "родственник", "pow_info": "о военнопленных",
        "other": "другое",
    },
    "uk": {
        "whisper": "Дзвінок. Мова: {language}. Тема: {kind}. Чекає {minutes} хв. "
        "Щоб прийняти, натисніть 1.",
        "whisper_callback": "Прохання передзвонити. Мова: {language}. Тема: {kind}. У черзі "
        "{minutes} хв. Щоб зателефонувати абоненту, натисніть 1.",
        "calling_back": "Телефонуємо абоненту. Будь ласка, залишайтеся на лінії.",
        "callback_no_answer": "Абонент не відповів. Ми спробуємо пізніше. До побачення.",
        "offer_taken": "Дзвінок уже прийняв інший оператор. До побачення.",
        "caller_gone": "Абонент уже поклав слухавку. До побачення.",
        "ru": "російська", "uk": "українська", "en": "англійська",
        "surrender": "здача в полон", "family": "родич", "pow_info": "про військовополонених",
        "other": "інше",
    },
    "en": {
        "whisper": "A call. Language: {language}. Topic: {kind}. Waited {minutes} minutes. "
        "Press 1 to accept.",
        "whisper_callback": "A call-back request. Language: {language}. Topic: {kind}. Queued "
        "{minutes} minutes ago. Press 1 to call them back.",
        "calling_back": "Calling the caller back. Please stay on the line.",
        "callback_no_answer": "The caller did not answer. We will try again later. Goodbye.",
        "offer_taken": "Another operator has taken this call. Goodbye.",
        "caller_gone": "The caller has hung up. Goodbye.",
        "ru": "Russian", "uk": "Ukrainian", "en": "English",
        "surrender": "surrender", "family": "a relative", "pow_info": "prisoners of war",
        "other": "other",
    },
}  # fmt: skip


def text(language: str, key: str) -> str:
    catalog = TEXTS.get(language, TEXTS["en"])
    return catalog.get(key, key)


def whisper_text(
    language: str, caller_language: str, kind: str, minutes: int, *, callback: bool = False
) -> str:
    """The whisper: the caller's language, the inquiry kind, minutes waited, "press 1"."""
    return text(language, "whisper_callback" if callback else "whisper").format(
        language=text(language, caller_language), kind=text(language, kind), minutes=minutes
    )
